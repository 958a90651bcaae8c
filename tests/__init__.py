"""mgn-verify's test suite. A regular package, so ``tests.helpers``, ``tests.checks.servers`` and
``tests.lab.helpers`` are this repository's modules however pytest is started (and whatever
``tests`` package another distribution may have put in site-packages)."""
