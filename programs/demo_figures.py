"""Demonstration line figures for the seeded exercises, drawn with Pillow at seed time.

Plain stick figures on a white card: the body in dark blue, the floor or the furniture in
grey, the movement as an orange arrow, the exercise's name underneath. Drawn here from
joint coordinates (no image files, no licence to track) and stored through the same
upload checks as a clinic's images (`programs.media.services.media_create`).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 480, 360
FLOOR = 280
BODY = (18, 38, 63)
PROP = (150, 160, 172)
MOVE = (214, 110, 0)
Point = tuple[float, float]


@dataclass
class Pose:
    """Joints of one figure; `props` are grey lines (floor, chair, step), `moves` arrows."""

    head: Point
    neck: Point
    hip: Point
    knees: tuple[Point, Point]
    feet: tuple[Point, Point]
    elbows: tuple[Point, Point]
    hands: tuple[Point, Point]
    props: list[tuple[Point, Point]] = field(default_factory=list)
    moves: list[tuple[Point, Point]] = field(default_factory=list)
    band: tuple[Point, Point] | None = None


def _floor() -> list[tuple[Point, Point]]:
    return [((30, FLOOR), (WIDTH - 30, FLOOR))]


def _chair(x: float = 170) -> list[tuple[Point, Point]]:
    return [
        ((x - 50, 215), (x + 15, 215)),
        ((x - 45, 215), (x - 45, FLOOR)),
        ((x + 10, 215), (x + 10, FLOOR)),
        ((x - 50, 215), (x - 50, 140)),
    ]


def _step() -> list[tuple[Point, Point]]:
    return [((200, 240), (330, 240)), ((200, 240), (200, FLOOR)), ((330, 240), (330, FLOOR))]


def standing() -> Pose:
    return Pose(
        head=(240, 70),
        neck=(240, 98),
        hip=(240, 185),
        knees=((230, 232), (250, 232)),
        feet=((228, FLOOR), (252, FLOOR)),
        elbows=((222, 140), (258, 140)),
        hands=((220, 180), (260, 180)),
        props=_floor(),
    )


def supine_figure_four() -> Pose:
    return Pose(
        head=(100, 262),
        neck=(128, 266),
        hip=(230, 270),
        knees=((285, 215), (262, 222)),
        feet=((330, 268), (300, 212)),
        elbows=((200, 240), (210, 235)),
        hands=((272, 228), (282, 220)),
        props=_floor(),
        moves=[((330, 170), (290, 150))],
    )


def supine_knee_to_shoulder() -> Pose:
    return Pose(
        head=(100, 262),
        neck=(128, 266),
        hip=(230, 270),
        knees=((330, 270), (215, 205)),
        feet=((400, 272), (262, 225)),
        elbows=((180, 235), (190, 228)),
        hands=((215, 212), (225, 206)),
        props=_floor(),
        moves=[((285, 185), (190, 175))],
    )


def seated_nerve_glide() -> Pose:
    return Pose(
        head=(150, 88),
        neck=(150, 116),
        hip=(160, 208),
        knees=((235, 205), (230, 210)),
        feet=((320, 180), (238, FLOOR)),
        elbows=((140, 160), (172, 160)),
        hands=((150, 200), (190, 198)),
        props=_floor() + _chair(),
        moves=[((300, 250), (335, 195)), ((120, 60), (112, 100))],
    )


def side_lying_clamshell() -> Pose:
    return Pose(
        head=(90, 248),
        neck=(118, 252),
        hip=(235, 258),
        knees=((290, 205), (295, 258)),
        feet=((340, 252), (345, 268)),
        elbows=((120, 222), (180, 240)),
        hands=((95, 218), (215, 238)),
        props=_floor(),
        moves=[((320, 240), (305, 190))],
    )


def side_lying_abduction() -> Pose:
    return Pose(
        head=(90, 248),
        neck=(118, 252),
        hip=(235, 258),
        knees=((310, 225), (300, 266)),
        feet=((385, 195), (370, 272)),
        elbows=((120, 222), (180, 240)),
        hands=((95, 218), (215, 238)),
        props=_floor(),
        moves=[((400, 245), (405, 180))],
    )


def bridge() -> Pose:
    return Pose(
        head=(90, 262),
        neck=(118, 266),
        hip=(245, 205),
        knees=((305, 205), (312, 212)),
        feet=((320, 274), (328, 274)),
        elbows=((150, 272), (160, 272)),
        hands=((200, 274), (210, 274)),
        props=_floor(),
        moves=[((245, 262), (245, 215))],
    )


def seated_piriformis() -> Pose:
    return Pose(
        head=(165, 92),
        neck=(162, 120),
        hip=(160, 208),
        knees=((235, 210), (238, 200)),
        feet=((238, FLOOR), (200, 196)),
        elbows=((185, 160), (195, 170)),
        hands=((215, 195), (238, 190)),
        props=_floor() + _chair(),
        moves=[((130, 90), (180, 110))],
    )


def squat(band: bool = False, load: bool = False) -> Pose:
    pose = Pose(
        head=(215, 120),
        neck=(220, 146),
        hip=(205, 215),
        knees=((262, 226), (272, 232)),
        feet=((240, FLOOR), (252, FLOOR)),
        elbows=((260, 180), (265, 175)),
        hands=((300, 170), (305, 166)),
        props=_floor(),
        moves=[((360, 130), (360, 210))],
    )
    if band:
        pose.band = ((258, 232), (276, 236))
    if load:
        pose.hands = ((245, 165), (250, 162))
        pose.elbows = ((255, 190), (260, 186))
        pose.props.append(((232, 168), (262, 168)))
    return pose


def side_step() -> Pose:
    return Pose(
        head=(240, 92),
        neck=(240, 120),
        hip=(240, 200),
        knees=((205, 238), (275, 238)),
        feet=((185, FLOOR), (295, FLOOR)),
        elbows=((220, 160), (260, 160)),
        hands=((215, 198), (265, 198)),
        props=_floor(),
        moves=[((320, 230), (400, 230))],
        band=((205, 250), (275, 250)),
    )


def sit_to_stand(single: bool = False) -> Pose:
    pose = Pose(
        head=(215, 100),
        neck=(208, 128),
        hip=(170, 205),
        knees=((242, 215), (240, 222)),
        feet=((238, FLOOR), (300, 245)),
        elbows=((235, 160), (238, 156)),
        hands=((262, 150), (266, 146)),
        props=_floor() + _chair(150),
        moves=[((330, 190), (330, 110))],
    )
    if not single:
        pose.feet = ((238, FLOOR), (250, FLOOR))
    return pose


def step(up: bool) -> Pose:
    return Pose(
        head=(265, 40),
        neck=(265, 68),
        hip=(265, 150),
        knees=((275, 195), (225, 200)),
        feet=((270, 240), (200 if up else 225, FLOOR if up else 262)),
        elbows=((250, 110), (282, 110)),
        hands=((248, 150), (285, 150)),
        props=_floor() + _step(),
        moves=[((360, 200), (360, 130)) if up else ((360, 130), (360, 200))],
    )


def lunge(angle: bool = False) -> Pose:
    return Pose(
        head=(240, 95),
        neck=(240, 123),
        hip=(240, 205),
        knees=((300, 215), (205, 262)),
        feet=((305, FLOOR), (150, FLOOR)),
        elbows=((228, 165), (255, 165)),
        hands=((240, 200), (262, 200)),
        props=_floor(),
        moves=[((330, 250), (400, 230 if angle else 250))],
    )


def hop() -> Pose:
    return Pose(
        head=(240, 45),
        neck=(240, 73),
        hip=(240, 155),
        knees=((252, 200), (228, 200)),
        feet=((245, 240), (222, 242)),
        elbows=((215, 100), (265, 100)),
        hands=((205, 60), (275, 60)),
        props=_floor(),
        moves=[((320, 260), (320, 190)), ((160, 190), (160, 260))],
    )


def sitting() -> Pose:
    return Pose(
        head=(165, 92),
        neck=(162, 120),
        hip=(160, 208),
        knees=((235, 210), (240, 214)),
        feet=((238, FLOOR), (245, FLOOR)),
        elbows=((180, 165), (188, 168)),
        hands=((215, 200), (222, 203)),
        props=_floor() + _chair(),
    )


def walking() -> Pose:
    return Pose(
        head=(240, 70),
        neck=(240, 98),
        hip=(240, 185),
        knees=((270, 230), (222, 235)),
        feet=((290, FLOOR), (195, FLOOR)),
        elbows=((222, 140), (258, 140)),
        hands=((205, 175), (282, 168)),
        props=_floor(),
        moves=[((320, 110), (410, 110))],
    )


def bird_dog() -> Pose:
    return Pose(
        head=(145, 165),
        neck=(170, 178),
        hip=(300, 180),
        knees=((300, 245), (370, 170)),
        feet=((355, 250), (440, 165)),
        elbows=((172, 225), (110, 178)),
        hands=((172, FLOOR - 20), (60, 172)),
        props=_floor(),
        moves=[((430, 200), (450, 170)), ((80, 205), (60, 180))],
    )


def side_bridge() -> Pose:
    return Pose(
        head=(110, 170),
        neck=(135, 188),
        hip=(265, 228),
        knees=((330, 250), (332, 246)),
        feet=((395, 272), (397, 266)),
        elbows=((135, 262), (180, 170)),
        hands=((175, 272), (225, 160)),
        props=_floor(),
        moves=[((265, 290), (265, 235))],
    )


def lifting() -> Pose:
    pose = squat()
    pose.hands = ((262, 232), (268, 230))
    pose.elbows = ((250, 190), (256, 186))
    pose.props.append(((245, 235), (295, 235)))
    pose.props.append(((245, 235), (245, 270)))
    pose.props.append(((295, 235), (295, 270)))
    pose.props.append(((245, 270), (295, 270)))
    return pose


POSES: dict[str, Callable[[], Pose]] = {
    "figure-four-stretch": supine_figure_four,
    "knee-to-opposite-shoulder-stretch": supine_knee_to_shoulder,
    "sciatic-nerve-glide": seated_nerve_glide,
    "clamshell": side_lying_clamshell,
    "side-lying-hip-abduction": side_lying_abduction,
    "bridge": bridge,
    "seated-piriformis-stretch": seated_piriformis,
    "banded-squat": lambda: squat(band=True),
    "banded-side-step": side_step,
    "single-leg-sit-to-stand": lambda: sit_to_stand(single=True),
    "step-down": lambda: step(up=False),
    "lunge": lunge,
    "lunge-45-degree": lambda: lunge(angle=True),
    "hop": hop,
    "sitting-tolerance": sitting,
    "walking": walking,
    "bird-dog": bird_dog,
    "side-bridge": side_bridge,
    "sit-to-stand": sit_to_stand,
    "loaded-squat": lambda: squat(load=True),
    "step-up": lambda: step(up=True),
    "lifting-practice": lifting,
    "aerobic-exercise": walking,
}


def _arrow(draw: ImageDraw.ImageDraw, start: Point, end: Point) -> None:
    draw.line([start, end], fill=MOVE, width=5)
    dx, dy = end[0] - start[0], end[1] - start[1]
    length = max((dx * dx + dy * dy) ** 0.5, 1)
    ux, uy = dx / length, dy / length
    left = (end[0] - 14 * ux + 8 * uy, end[1] - 14 * uy - 8 * ux)
    right = (end[0] - 14 * ux - 8 * uy, end[1] - 14 * uy + 8 * ux)
    draw.polygon([end, left, right], fill=MOVE)


def draw(name: str, pose: Pose) -> bytes:
    """The card as PNG bytes."""
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    pen = ImageDraw.Draw(image)
    for start, end in pose.props:
        pen.line([start, end], fill=PROP, width=4)
    for side in (0, 1):
        pen.line([pose.hip, pose.knees[side], pose.feet[side]], fill=BODY, width=7, joint="curve")
        pen.line(
            [pose.neck, pose.elbows[side], pose.hands[side]], fill=BODY, width=6, joint="curve"
        )
    pen.line([pose.neck, pose.hip], fill=BODY, width=8)
    x, y = pose.head
    pen.ellipse([x - 16, y - 16, x + 16, y + 16], outline=BODY, width=6)
    if pose.band is not None:
        pen.line(list(pose.band), fill=(0, 140, 90), width=5)
    for start, end in pose.moves:
        _arrow(pen, start, end)
    font = ImageFont.load_default(size=22)
    pen.text((WIDTH / 2, HEIGHT - 30), name, fill=BODY, font=font, anchor="mm")
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()


def figure_png(slug: str, name: str) -> bytes:
    return draw(name, POSES.get(slug, standing)())
