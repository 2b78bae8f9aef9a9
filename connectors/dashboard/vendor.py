"""Vendor the dashboard's fonts and the accessibility engine from ``assets/node_modules`` (installed
from the npm registry by ``make install``) into ``static/vendor``, which the API serves: the page,
its fonts and the agenda PDF never fetch anything at run time."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).parent
MODULES = HERE / "assets" / "node_modules"
VENDOR = HERE / "static" / "vendor"

#: (package, weights): a sans-serif for Latin and Vietnamese, and one for each script of the region
FONTS = (
    ("noto-sans", ("400", "700")),
    ("noto-sans-thai", ("400", "700")),
    ("noto-sans-myanmar", ("400", "700")),
    ("noto-sans-khmer", ("400", "700")),
    ("noto-sans-lao", ("400", "700")),
    # Chinese: one weight (bold is synthesised), its subsets loaded only for the characters shown
    ("noto-sans-sc", ("400",)),
)
_URL = re.compile(r"url\(\./files/([^)]+)\)")


def vendor(modules: Path = MODULES, target: Path = VENDOR) -> list[Path]:
    """Copy what the dashboard serves; returns the files written. Idempotent."""
    if not modules.is_dir():
        raise FileNotFoundError(f"{modules}: run `npm ci` in {modules.parent} first (make install does)")
    fonts = target / "fonts"
    fonts.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    css: list[str] = []
    for package, weights in FONTS:
        source = modules / "@fontsource" / package
        own: list[str] = []
        for weight in weights:
            text = (source / f"{weight}.css").read_text(encoding="utf-8")
            for name in _URL.findall(text):
                copied = fonts / name
                if not copied.exists():
                    shutil.copyfile(source / "files" / name, copied)
                    written.append(copied)
            own.append(_URL.sub(r"url(fonts/\1)", text))
        # One stylesheet per family too: the PDF renderer loads only the scripts a document needs.
        family = target / f"{package}.css"
        family.write_text("\n".join(own), encoding="utf-8")
        written.append(family)
        css += own
    stylesheet = target / "fonts.css"
    stylesheet.write_text("\n".join(css), encoding="utf-8")
    axe = target / "axe.min.js"
    shutil.copyfile(modules / "axe-core" / "axe.min.js", axe)
    return [*written, stylesheet, axe]


def vendored(target: Path = VENDOR) -> bool:
    return (target / "fonts.css").is_file()


#: The families a document in each language needs beside Noto Sans (Latin, Vietnamese, digits).
_SCRIPT_FAMILY = {
    "th": "noto-sans-thai",
    "my": "noto-sans-myanmar",
    "km": "noto-sans-khmer",
    "lo": "noto-sans-lao",
    "zh": "noto-sans-sc",
}


def print_fonts(language: str, target: Path = VENDOR) -> list[Path]:
    """The stylesheets of the fonts a printed document in ``language`` uses (none if not vendored)."""
    names = ["noto-sans", *([_SCRIPT_FAMILY[language]] if language in _SCRIPT_FAMILY else [])]
    return [path for path in (target / f"{name}.css" for name in names) if path.is_file()]


if __name__ == "__main__":
    files = vendor()
    sys.stdout.write(f"vendored {len(files)} files into {VENDOR}\n")
