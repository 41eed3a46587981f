"""Refuse names pip or Python would choke on, and a plugin with no hook at all."""

import re
import sys

slug = "{{ cookiecutter.project_slug }}"
if not re.fullmatch(r"oxios-plugin-[a-z][a-z0-9]*(-[a-z0-9]+)*", slug):
    sys.exit(f"error: {slug!r} is not a valid name: use oxios-plugin- plus lowercase letters, digits and single hyphens")
hooks = [
    "{{ cookiecutter.with_tool }}",
    "{{ cookiecutter.with_channel }}",
    "{{ cookiecutter.with_provider }}",
    "{{ cookiecutter.with_command }}",
    "{{ cookiecutter.with_policy }}",
]
if not any(h == "True" for h in hooks):
    sys.exit("error: choose at least one hook to start with (tool, channel, provider, command or policy)")
