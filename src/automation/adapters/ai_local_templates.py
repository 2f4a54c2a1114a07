"""The local provider's templates: ideas, article sections and image styles."""

from __future__ import annotations

import colorsys
import hashlib
import html
import re
import textwrap

from automation.adapters.ai_local_text import stable_hash

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def shuffle(n: int, seed: int) -> list[int]:
    """A deterministic permutation of range(n) keyed by the seed."""
    return sorted(range(n), key=lambda i: stable_hash(str(seed), str(i)))


# Idea templates: "title|description"; {T} titled topic, {t} topic, {k} keywords, {n} a number.
IDEAS = [
    "The Complete Guide to {T}|Everything a reader needs about {t}: what it is, why it matters "
    "and how to get it right, covering {k}.",
    "{T}: {n} Mistakes to Avoid|A practical list of the errors people make with {t}, each with "
    "a fix, drawing on searches such as {k}.",
    "How to Choose the Right {T}|A buyer-minded walkthrough that compares the options for {t} "
    "and explains which fits whom, answering {k}.",
    "{T} for Beginners: Where to Start|A friendly first step into {t} for newcomers, with clear "
    "definitions and a simple plan, built around {k}.",
    "{n} Expert Tips for Better {T}|Field-tested advice on {t} from people who practise it every "
    "day, organised so readers can act at once on {k}.",
    "{T} Explained: Myths and Facts|This piece separates evidence from folklore about {t} and "
    "shows what really works, touching on {k}.",
]
HEADINGS = [
    "What {T} Really Means", "Why {T} Matters", "Getting Started with {T}",
    "Choosing the Right Approach to {T}", "Common Mistakes with {T}", "Advanced Tips for {T}",
    "Step by Step: {T} in Practice", "Tools and Resources for {T}", "Comparing Options for {T}",
    "Measuring Success with {T}", "Costs and Budgeting for {T}",
]  # fmt: skip
# Section paragraphs; {k} is a keyword woven in, {t} the topic.
PARAGRAPHS = [
    'When people search for "{k}", they usually want a clear answer they can trust. With {t}, '
    "that means starting from the basics and building up, so every choice you make has a "
    "reason behind it and nothing is left to chance.",
    'A useful way to think about "{k}" is as a series of small decisions. Each one is easy on '
    "its own, but together they shape the result, which is why this part of {t} deserves "
    "careful and patient attention.",
    'Experienced practitioners point out that "{k}" rarely stands alone. It connects to '
    "everything else covered in this guide to {t}, and small improvements made here tend to "
    "compound over the following weeks.",
    'Consider a simple example: someone new to "{k}" tries the most popular option first. '
    "Often that works, but the details of {t} explain when a different path is wiser and "
    "which warning signs to watch for along the way.",
    'There is no single right answer to "{k}". Budget, experience and goals all matter, so '
    "treat the points in this section as a checklist rather than a rulebook, and adapt them "
    "to your own situation with {t}.",
    'Keep notes as you go. Recording what you tried for "{k}", and what changed as a result, '
    "turns guesswork into knowledge and makes every later step with {t} faster, cheaper and "
    "noticeably more reliable.",
]
STYLES = [
    "flat vector illustration, soft pastel palette", "cinematic photograph, golden hour light",
    "isometric 3D render, clean studio background", "minimal line art, bold accent colour",
    "editorial watercolour, textured paper",
]  # fmt: skip


def render_svg(prompt: str) -> bytes:
    """An SVG whose colours and shapes derive from a hash of the prompt."""
    digest = hashlib.sha256(prompt.encode("utf-8", "surrogatepass")).digest()

    def colour(i: int, light: float) -> str:
        r, g, b = colorsys.hls_to_rgb(digest[i] / 255, light, 0.55 + digest[i + 1] / 600)
        return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"

    shapes = []
    for s in range(4):
        x, y, size = digest[8 + 3 * s] * 1200 // 255, digest[9 + 3 * s] * 630 // 255, 40
        size += digest[10 + 3 * s] % 160
        fill, shape = colour(20 + s, 0.7), ("circle", "rect")[digest[s] % 2]
        shapes.append(
            f'<circle cx="{x}" cy="{y}" r="{size}" fill="{fill}" fill-opacity="0.45"/>'
            if shape == "circle"
            else f'<rect x="{x - size}" y="{y - size // 2}" width="{2 * size}" '
            f'height="{size}" rx="12" fill="{fill}" fill-opacity="0.4"/>'
        )
    lines = textwrap.wrap(_NOT_XML.sub("", " ".join(prompt.split()[:12])), 34)[:3] or [""]
    text = "".join(
        f'<tspan x="80" dy="{0 if i == 0 else 64}">{html.escape(line)}</tspan>'
        for i, line in enumerate(lines)
    )
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="1200" height="630" '
        'viewBox="0 0 1200 630">'
        '<defs><linearGradient id="bg" x1="0" y1="0" x2="1" y2="1">'
        f'<stop offset="0" stop-color="{colour(0, 0.35)}"/>'
        f'<stop offset="1" stop-color="{colour(2, 0.55)}"/></linearGradient></defs>'
        '<rect width="1200" height="630" fill="url(#bg)"/>'
        f"{''.join(shapes)}"
        '<text x="80" y="300" font-family="sans-serif" font-size="52" fill="#ffffff" '
        f'font-weight="bold">{text}</text></svg>'
    )
    return svg.encode()
