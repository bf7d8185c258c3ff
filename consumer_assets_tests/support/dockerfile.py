"""A small Dockerfile reader for the image tests: what the final stage runs, as whom, with which environment.

It knows the instructions the tests need (FROM, ARG, ENV, USER, WORKDIR, EXPOSE, RUN, ENTRYPOINT,
CMD, HEALTHCHECK), continuation lines, comments and the $VAR / ${VAR} substitution ENV does; it is
no general Dockerfile parser.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


@dataclass
class Stage:
    """The final stage of a Dockerfile: its settings as `docker run` would apply them."""

    base: str
    env: dict[str, str] = field(default_factory=dict)
    args: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    workdir: str | None = None
    exposed: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)

    @property
    def argv(self) -> list[str]:
        """What the container runs: ENTRYPOINT followed by CMD (Docker's exec-form semantics)."""
        return [*self.entrypoint, *self.cmd]


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) pairs: continuation lines joined, comments and parser directives dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # comments may also sit between continuation lines
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, rest = (pending + line).partition(" ")
        result.append((keyword.upper(), rest.strip()))
        pending = ""
    return result


def substitute(value: str, env: dict[str, str]) -> str:
    """ENV's substitution: $NAME and ${NAME} from the variables set so far, empty when unset."""
    return VARIABLE.sub(lambda m: env.get(m.group(1) or m.group(2), ""), value)


def command(rest: str) -> list[str]:
    """An exec-form (JSON) command as is; a shell-form one as Docker runs it, under /bin/sh -c."""
    return json.loads(rest) if rest.startswith("[") else ["/bin/sh", "-c", rest]


def final_stage(path: Path, base_env: dict[str, str]) -> Stage:
    """The last stage of the Dockerfile at `path`; `base_env` stands for the base image's environment."""
    stage: Stage | None = None
    for keyword, rest in instructions(path.read_text()):
        if keyword == "FROM":
            stage = Stage(base=rest.split()[0], env=dict(base_env))
            continue
        assert stage is not None, f"{keyword} before FROM in {path}"
        if keyword == "ENV":
            before = dict(stage.env)  # one ENV instruction substitutes the values from before it
            words = shlex.split(rest)
            pairs = [w.split("=", 1) for w in words] if "=" in words[0] else [[words[0], " ".join(words[1:])]]
            stage.env.update({name: substitute(value, before) for name, value in pairs})
        elif keyword == "ARG":
            name, _, default = rest.partition("=")
            stage.args[name] = default
        elif keyword == "USER":
            stage.user = rest
        elif keyword == "WORKDIR":
            stage.workdir = rest
        elif keyword == "EXPOSE":
            stage.exposed += rest.split()
        elif keyword == "RUN":
            stage.runs.append(rest)
        elif keyword == "ENTRYPOINT":
            stage.entrypoint = command(rest)
            stage.cmd = []  # Docker resets an inherited CMD when ENTRYPOINT is set
        elif keyword == "CMD":
            stage.cmd = command(rest)
        elif keyword == "HEALTHCHECK":
            stage.healthcheck = command(rest[rest.index("CMD") + 3 :].strip())
    assert stage is not None, f"no FROM in {path}"
    return stage


def option(argv: list[str], flag: str) -> str:
    """The value given to `flag` in a command line (`-p 4000`)."""
    return argv[argv.index(flag) + 1]


def with_option(argv: list[str], flag: str, value: str) -> list[str]:
    """The command line with `flag`'s value replaced."""
    at = argv.index(flag) + 1
    return [*argv[:at], value, *argv[at + 1 :]]
