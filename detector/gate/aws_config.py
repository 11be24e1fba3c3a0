"""Regions and accounts of the AWS CLI's named profiles, from the CLI's config file text.

The CLI falls back to the profile's `region` when neither `--region` nor AWS_REGION /
AWS_DEFAULT_REGION is set, so the gate does the same. The account a profile acts in is its
`sso_account_id`, or the account of its `role_arn`; profiles with static keys name none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ROLE_ACCOUNT = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}):")


@dataclass(frozen=True, slots=True, kw_only=True)
class AwsProfile:
    region: str = ""
    account: str = ""


def parse_config(text: str) -> dict[str, AwsProfile]:
    """Profile name → region and account; a file the CLI could not read gives nothing."""
    import configparser  # only when there is a config file to read

    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text)
    except configparser.Error:
        return {}
    profiles: dict[str, AwsProfile] = {}
    for section in parser.sections():
        if section == "default":
            name = "default"
        elif section.startswith("profile "):
            name = section.removeprefix("profile ").strip()
        else:
            continue  # [sso-session x], [services x]
        role = _ROLE_ACCOUNT.match(parser.get(section, "role_arn", fallback=""))
        account = parser.get(section, "sso_account_id", fallback="") or (
            role.group(1) if role else ""
        )
        profiles[name] = AwsProfile(
            region=parser.get(section, "region", fallback="").strip(), account=account.strip()
        )
    return profiles
