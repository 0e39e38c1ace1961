"""The benchmarks' shared README writer: each script owns one marked section."""

from pathlib import Path


def write_section(readme: Path, name: str, text: str) -> None:
    """Replace the README's section `name` (between its markers) with `text`; keep the rest.

    Each benchmark owns one section, `<!-- name:begin -->` to `<!-- name:end -->`; a README
    without it gets it appended, and the file is replaced atomically.
    """
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{text.strip()}\n{end}"
    current = readme.read_text() if readme.exists() else ""
    if begin in current and end in current:
        head, rest = current.split(begin, 1)
        updated = head + block + rest.split(end, 1)[1]
    else:
        updated = (current.rstrip() + "\n\n" if current.strip() else "") + block + "\n"
    temporary = readme.with_suffix(".md.tmp")
    temporary.write_text(updated)
    temporary.replace(readme)
