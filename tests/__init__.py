"""Tests of openedx-pok."""
