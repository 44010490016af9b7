"""Build the fonts in render/fonts/ from the Noto families (SIL Open Font License 1.1).

Run from the repository root: `python -m render.fonts.build_fonts [--core DIR] [--cjk DIR] [--full-cjk]`.
It needs fonttools (requirements-dev.txt). Without --core/--cjk it fetches the Debian packages
fonts-noto-core and fonts-noto-cjk with `apt-get download` and unpacks them with `dpkg -x`.

What it writes:
- NotoSans-Regular.ttf, NotoSans-Bold.ttf: Latin (Vietnamese, Polish, ...), Greek, Cyrillic, copied as they are;
- NotoSansArabic-Regular.ttf, NotoSansArabic-Bold.ttf: Arabic, copied as they are;
- NotoSansCJKsc-Regular.otf: the Simplified Chinese face of Noto Sans CJK, cut down to the characters of
  GB 2312 (6,763 hanzi, kana, CJK punctuation), the 2,350 Hangul syllables of KS X 1001 and the
  full-width forms (about 3 MB instead of 16 MB). --full-cjk keeps every character of the face instead.
Text with a character none of these fonts has is refused at submit (docs/report-data.md).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FONTS_DIR = Path(__file__).resolve().parent
COPIED = ("NotoSans-Regular.ttf", "NotoSans-Bold.ttf", "NotoSansArabic-Regular.ttf", "NotoSansArabic-Bold.ttf")
CJK_SOURCE, CJK_FACE, CJK_OUTPUT = "NotoSansCJK-Regular.ttc", 2, "NotoSansCJKsc-Regular.otf"  # face 2: SC
EXTRA_RANGES = ((0x3000, 0x303F), (0xFF00, 0xFFEF))  # CJK punctuation, full-width forms


def double_byte_charset(codec: str, leads: range, trails: range) -> set[str]:
    """Every character a double-byte codec (gb2312, euc_kr) can encode in the given byte ranges."""
    chars = set()
    for lead in leads:
        for trail in trails:
            try:
                chars.add(bytes([lead, trail]).decode(codec))
            except UnicodeDecodeError:
                continue
    return chars


def cjk_characters() -> str:
    """GB 2312 (all rows), the Hangul syllables of KS X 1001 and the extra ranges, as one string."""
    chars = double_byte_charset("gb2312", range(0xA1, 0xF8), range(0xA1, 0xFF))
    chars |= double_byte_charset("euc_kr", range(0xB0, 0xC9), range(0xA1, 0xFF))  # rows 16-40: Hangul
    chars |= {chr(code) for start, end in EXTRA_RANGES for code in range(start, end + 1)}
    return "".join(sorted(chars))


def fetch_debian_fonts(work: Path) -> tuple[Path, Path]:
    """Download and unpack fonts-noto-core and fonts-noto-cjk; return their font directories."""
    subprocess.run(["apt-get", "download", "fonts-noto-core", "fonts-noto-cjk"], cwd=work, check=True)
    for deb in work.glob("*.deb"):
        subprocess.run(["dpkg", "-x", str(deb), str(work / "root")], check=True)
    share = work / "root" / "usr" / "share" / "fonts"
    return share / "truetype" / "noto", share / "opentype" / "noto"


def subset_cjk(source: Path, output: Path, *, full: bool, work: Path) -> None:
    """Write the SC face of the Noto Sans CJK collection, cut to cjk_characters() unless `full`."""
    args = [str(source), f"--font-number={CJK_FACE}", f"--output-file={output}", "--no-hinting", "--name-IDs=*"]
    if full:
        args.append("--unicodes=*")
    else:
        text_file = work / "cjk-characters.txt"
        text_file.write_text(cjk_characters(), encoding="utf-8")
        args.append(f"--text-file={text_file}")
    subprocess.run([sys.executable, "-m", "fontTools.subset", *args], check=True)


def build(core: Path | None, cjk: Path | None, *, full_cjk: bool = False) -> None:
    """Copy and subset the fonts into render/fonts/."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if core is None or cjk is None:
            fetched_core, fetched_cjk = fetch_debian_fonts(work)
            core, cjk = core or fetched_core, cjk or fetched_cjk
        for name in COPIED:
            shutil.copyfile(core / name, FONTS_DIR / name)
        subset_cjk(cjk / CJK_SOURCE, FONTS_DIR / CJK_OUTPUT, full=full_cjk, work=work)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--core", type=Path, help="directory with the Noto Sans .ttf files (fonts-noto-core)")
    parser.add_argument("--cjk", type=Path, help=f"directory with {CJK_SOURCE} (fonts-noto-cjk)")
    parser.add_argument("--full-cjk", action="store_true", help="keep every character of the CJK face (~16 MB)")
    args = parser.parse_args(argv)
    build(args.core, args.cjk, full_cjk=args.full_cjk)
    for path in sorted(FONTS_DIR.glob("*.[ot]tf")):
        sys.stdout.write(f"{path.name}: {path.stat().st_size // 1024} KiB\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
