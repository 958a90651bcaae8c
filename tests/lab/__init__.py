"""Tests of the GuildNet lab simulators (shared helpers: ``tests.lab.helpers``)."""
