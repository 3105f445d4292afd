"""Site profiles. Adding a ministry is one file here that subclasses `Profile`
(monitor.extract) and one line in `PROFILES`."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel

from monitor.extract import Profile
from monitor.sites.document import DocumentProfile
from monitor.sites.feed import FeedProfile
from monitor.sites.generic import GenericProfile
from monitor.sites.govkz import GovKzProfile
from monitor.sites.midru import MidRuProfile
from monitor.sites.stategov import StateGovProfile

# The order `get_profile` asks them whether a URL is theirs. `document` first: a file's URL
# (a PDF, a Word file) is read as that file on any host. Then the host profiles; then
# `feed`, so a feed URL is the feed profile's only when no host profile claims it; and last
# `generic`, which claims no URL of its own and reads whatever nobody else does.
PROFILES: tuple[type[Profile], ...] = (
    DocumentProfile,
    GovKzProfile,
    MidRuProfile,
    StateGovProfile,
    FeedProfile,
    GenericProfile,
)
_BY_NAME: dict[str, type[Profile]] = {profile.name: profile for profile in PROFILES}


def profile_names() -> list[str]:
    return sorted(_BY_NAME)


def profile_class(name: str | None, url: str) -> type[Profile]:
    """The named profile, else the first in `PROFILES` whose `matches(url)` is true, else
    `generic`."""
    if name:
        return _BY_NAME[name]
    for cls in PROFILES:
        if cls.matches(url):
            return cls
    return GenericProfile


def get_profile(name: str | None, url: str) -> Profile:
    return profile_class(name, url)()


class ProfileCatalog:
    """The profiles as the config reader knows them: their names (iterating), and the
    options model of the profile a watch gets."""

    def __iter__(self) -> Iterator[str]:
        return iter(profile_names())

    def options_model(self, name: str | None, url: str) -> type[BaseModel]:
        return profile_class(name, url).options


def profile_catalog() -> ProfileCatalog:
    return ProfileCatalog()


__all__ = [
    "PROFILES",
    "Profile",
    "ProfileCatalog",
    "get_profile",
    "profile_catalog",
    "profile_class",
    "profile_names",
]
