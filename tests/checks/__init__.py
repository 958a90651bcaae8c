"""Tests of the system, network and GuildNet layers (shared types: ``tests.checks.servers``)."""
