"""Site profiles. Adding a ministry is one file here that subclasses `Profile`."""

# `feed` comes after the host profiles: `get_profile` asks them in registration order, and
# a feed URL is only the feed profile's when no host profile claims it.
from monitor.sites import generic, govkz, midru, stategov, feed  # noqa: I001

__all__ = ["feed", "generic", "govkz", "midru", "stategov"]
