"""Site profiles. Adding a ministry is one file here that subclasses `Profile`."""

from monitor.sites import generic, govkz, midru, stategov

__all__ = ["generic", "govkz", "midru", "stategov"]
