"""Seeding the list of mines and enterprises from `bot/data/sites.json`."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from bot.config import LOCALES
from storage.sites import SiteRepository

SITE_KINDS = {"underground", "open-pit", "processing"}


class SeedError(ValueError):
    pass


def load_seed(text: str | None = None) -> list[dict[str, Any]]:
    """The regions of the seed file, checked: every name in every language, unique codes."""
    if text is None:
        text = resources.files("bot.data").joinpath("sites.json").read_text(encoding="utf-8")
    regions = json.loads(text)["regions"]
    seen_regions: set[str] = set()
    seen_sites: set[str] = set()
    for region in regions:
        _check_names(region)
        if region["code"] in seen_regions:
            raise SeedError(f"region code {region['code']!r} appears twice")
        seen_regions.add(region["code"])
        for site in region["sites"]:
            _check_names(site)
            if site["code"] in seen_sites:
                raise SeedError(f"site code {site['code']!r} appears twice")
            if site.get("kind") not in SITE_KINDS:
                raise SeedError(f"site {site['code']!r} has kind {site.get('kind')!r}")
            seen_sites.add(site["code"])
    return regions


def _check_names(entry: dict[str, Any]) -> None:
    code = entry.get("code")
    if not code or len(code) > 24 or not code.replace("-", "").isalnum() or not code.isascii():
        raise SeedError(f"bad code {code!r}")
    names = entry.get("name", {})
    for language in LOCALES:
        if not names.get(language, "").strip():
            raise SeedError(f"{code!r} has no {language} name")


async def seed_sites(sites: SiteRepository, regions: list[dict[str, Any]] | None = None) -> None:
    """Idempotent: run at every start; adds what is missing and keeps what admins changed."""
    for region_position, region in enumerate(regions if regions is not None else load_seed()):
        await sites.upsert_region(region["code"], region_position, region["name"])
        for site_position, site in enumerate(region["sites"]):
            await sites.insert_site_if_missing(
                site["code"], region["code"], site_position, site["kind"], site.get("operator") or None, site["name"]
            )
