"""Stand-in for the Open edX platform package of this name, for the earlier openedx-pok's migrations only."""
