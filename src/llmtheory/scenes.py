"""Synthetic images and videos for the vision-language chapters: scenes of coloured shapes with questions whose
answering patches are known.

This is the "toy world of images" that issue 12 asks of ``llmtheory.toyworld``; it lives in its own module so that
the text world (``toyworld``) and the image world can grow independently. Everything is a pure function of a numpy
``Generator`` (use :func:`llmtheory.seeding.make_rng`; no global state).

A **scene** is a ``GRID`` × ``GRID`` board of cells. How the vision tower cuts it into patches is the scene's
:class:`Geometry`: by default (:data:`DEFAULT`) each cell is exactly one patch (``CELL`` pixels square), so a
question's evidence is a set of patch indices (row-major, ``row * GRID + col``), which is the ground truth for "did
a pruning method keep the right visual tokens?"; with :data:`FINE` the same pictures are cut into 8-pixel patches, a
12 × 12 grid on which each object covers 2 × 2 patches, and a question's evidence is every patch its objects cover.
A cell is empty (dark background) or holds one shape (:data:`SHAPES`) in one colour (:data:`COLOURS`). With
``distractor=True`` a **logo** (a white-framed star, :data:`LOGO`) sits in one cell of every image: a salient patch
present everywhere, which a model learns to look at whatever the question (the "prior" of the ``priortr`` chapter).

Questions (one-word answers) come in kinds (:data:`QUESTION_KINDS`), grouped as

* **local** — the answer sits in one patch: ``colour`` ("what colour is the circle ?", the shape being unique in
  the scene), ``shape`` ("what shape is the red one ?", the colour unique), ``logo`` ("what colour is the logo ?");
* **global** — the answer needs many patches: ``count`` ("how many shapes are there ?", the logo not counted) and
  ``exist`` ("is there a red circle ?", yes or no; half of the "no" cases are near misses that share the colour or
  the shape with an object in the scene);
* **temporal** (videos only, :func:`make_video`): ``event_colour`` ("what colour is the square that appears ?"),
  ``event_count`` ("how many shapes appear ?") and ``event_order`` ("which appears first , the circle or the
  cross ?"), with the evidence given as frames and patches.

A **video** is a sequence of text-free frames over a fixed background scene in which short **events** happen (a
shape appears in an empty cell for a few frames, then disappears). Each frame also has a short description
(:func:`describe`), for query–frame similarity models.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from .params import ParameterError, check_choice, check_int

GRID = 6
"""Cells per side: a scene is GRID × GRID patches (36 visual tokens)."""
CELL = 16
"""Pixels per cell side, equal to the vision tower's patch size."""
IMAGE_SIZE = GRID * CELL

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (225, 45, 45),
    "green": (40, 185, 70),
    "blue": (55, 95, 235),
    "yellow": (235, 215, 40),
    "purple": (155, 70, 210),
    "orange": (245, 140, 30),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "cross")
LOGO = "logo"
BACKGROUND = (28, 28, 32)
NUMBERS: tuple[str, ...] = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight")

QUESTION_KINDS: dict[str, str] = {
    "colour": "local",
    "shape": "local",
    "logo": "local",
    "count": "global",
    "exist": "global",
    "event_colour": "temporal",
    "event_count": "temporal",
    "event_order": "temporal",
}
"""Question kind → group (``local``, ``global`` or ``temporal``)."""
IMAGE_KINDS: tuple[str, ...] = ("colour", "shape", "logo", "count", "exist")
VIDEO_KINDS: tuple[str, ...] = ("event_colour", "event_count", "event_order")

MIN_OBJECTS, MAX_OBJECTS = 1, 6


@dataclass(frozen=True)
class Geometry:
    """How the ``GRID`` × ``GRID`` board is drawn and cut into the vision tower's patches: cells of ``cell`` pixels
    seen through square patches of ``patch`` pixels (``patch`` divides ``cell``), so an object covers
    ``(cell // patch)²`` patches and the image is a ``side`` × ``side`` grid of patches (row-major indices)."""

    cell: int = CELL
    patch: int = CELL

    def __post_init__(self):
        check_int("cell", self.cell, minimum=8)  # the shapes' masks keep a two-pixel margin
        check_int("patch", self.patch, minimum=1, maximum=self.cell)
        if self.cell % self.patch:
            raise ParameterError(f"patch must divide cell; got patch={self.patch}, cell={self.cell}")

    @property
    def image_size(self) -> int:
        """Pixels per image side."""
        return GRID * self.cell

    @property
    def per_cell(self) -> int:
        """Patches per cell side."""
        return self.cell // self.patch

    @property
    def side(self) -> int:
        """Patches per image side."""
        return GRID * self.per_cell

    @property
    def n_patches(self) -> int:
        """Visual tokens of the image (``side²``)."""
        return self.side**2

    def cell_patches(self, cell: int) -> tuple[int, ...]:
        """Row-major indices of the patches that cover board cell ``cell`` (``row * GRID + col``), sorted."""
        row, col = divmod(int(cell), GRID)
        n = self.per_cell
        return tuple((row * n + i) * self.side + col * n + j for i in range(n) for j in range(n))

    def patches_of(self, cells) -> tuple[int, ...]:
        """The patches that cover any of ``cells``, sorted."""
        return tuple(sorted({p for c in cells for p in self.cell_patches(c)}))


DEFAULT = Geometry()
"""One 16-pixel patch per cell: 96 × 96 pixels, 6 × 6 visual tokens (the zoo's ``vlm-llava``)."""
FINE = Geometry(cell=CELL, patch=CELL // 2)
"""The same 96 × 96 pictures through 8-pixel patches: 12 × 12 visual tokens, 2 × 2 per object
(``vlm-llava-12``)."""


# --------------------------------------------------------------------------------------------------------------
# Scenes and their pictures
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Thing:
    """One shape in one cell (``patch``: the cell's index on the board, which is its patch in the default
    geometry; :meth:`Geometry.cell_patches` gives its patches in any geometry)."""

    row: int
    col: int
    shape: str
    colour: str

    @property
    def patch(self) -> int:
        """Row-major index of the cell on the board (its patch index in :data:`DEFAULT`)."""
        return self.row * GRID + self.col


@dataclass(frozen=True)
class Scene:
    """A board of shapes; ``logo`` is the distractor's cell (``Thing`` with shape ``"logo"``) or ``None``;
    ``geometry``: how it is drawn and cut into patches."""

    things: tuple[Thing, ...]
    logo: Thing | None = None
    geometry: Geometry = DEFAULT

    @property
    def occupied(self) -> tuple[int, ...]:
        """Board cells of the shapes (not the logo), sorted (their patch indices in :data:`DEFAULT`)."""
        return tuple(sorted(t.patch for t in self.things))

    def patches(self, thing: Thing) -> tuple[int, ...]:
        """The patches ``thing`` covers in this scene's geometry."""
        return self.geometry.cell_patches(thing.patch)

    def image(self) -> np.ndarray:
        """The picture: ``uint8`` array of shape (image_size, image_size, 3) of the scene's geometry."""
        return render(self)


@dataclass(frozen=True)
class Question:
    """A question about a scene (or a video) with its one-word answer and its evidence.

    ``patches``: the patch indices whose content decides the answer, every patch the deciding objects cover in the
    scene's geometry (for a video, ``frames`` lists the frames where they matter; ``patches`` then refers to every
    one of those frames).
    """

    kind: str
    text: str
    answer: str
    patches: tuple[int, ...]
    frames: tuple[int, ...] = ()

    @property
    def group(self) -> str:
        return QUESTION_KINDS[self.kind]


@functools.cache
def _masks(cell: int = CELL) -> dict[str, np.ndarray]:
    """Boolean ``cell`` × ``cell`` masks of each shape (and of the logo's star and frame)."""
    c = (cell - 1) / 2
    y, x = np.mgrid[0:cell, 0:cell].astype(float)
    dy, dx = y - c, x - c
    r = cell / 2 - 2.0  # a two-pixel margin keeps neighbouring shapes apart
    triangle = (y >= c - r) & (y <= c + r) & (np.abs(dx) <= (y - (c - r)) / 2 + 0.5)
    masks = {
        "circle": dx**2 + dy**2 <= r**2,
        "square": (np.abs(dx) <= r - 0.5) & (np.abs(dy) <= r - 0.5),
        "triangle": triangle,
        "diamond": np.abs(dx) + np.abs(dy) <= r + 0.5,
        # thin arms, so that its area (52 pixels) differs from the others' (84 to 144)
        "cross": ((np.abs(dx) <= 1) | (np.abs(dy) <= 1)) & (np.abs(dx) <= r + 1) & (np.abs(dy) <= r + 1),
    }
    angle, radius = np.arctan2(dy, dx), np.hypot(dx, dy)
    star = radius <= (r - 1) * (0.55 + 0.45 * np.cos(5 * (angle + np.pi / 2)) ** 2)
    frame = (np.maximum(np.abs(dx), np.abs(dy)) >= c - 1) & (np.maximum(np.abs(dx), np.abs(dy)) <= c + 0.5)
    masks["logo_star"], masks["logo_frame"] = star, frame
    return masks


def render(scene: Scene) -> np.ndarray:
    """Draw ``scene`` as an RGB ``uint8`` image (image_size × image_size × 3 of its geometry)."""
    size = scene.geometry.cell
    masks = _masks(size)
    image = np.empty((scene.geometry.image_size, scene.geometry.image_size, 3), dtype=np.uint8)
    image[:] = BACKGROUND
    for thing in scene.things + ((scene.logo,) if scene.logo is not None else ()):
        cell = image[thing.row * size : (thing.row + 1) * size, thing.col * size : (thing.col + 1) * size]
        if thing.shape == LOGO:
            cell[masks["logo_frame"]] = (255, 255, 255)
            cell[masks["logo_star"]] = COLOURS[thing.colour]
        else:
            cell[masks[thing.shape]] = COLOURS[thing.colour]
    return image


def mask_patches(image: np.ndarray, patches, fill=BACKGROUND, geometry: Geometry = DEFAULT) -> np.ndarray:
    """A copy of ``image`` with the patches ``patches`` (of ``geometry``) painted over with ``fill`` (the empty
    background)."""
    out = image.copy()
    size = geometry.patch
    for p in patches:
        row, col = divmod(int(p), geometry.side)
        out[row * size : (row + 1) * size, col * size : (col + 1) * size] = fill
    return out


def make_scene(
    rng: np.random.Generator,
    *,
    n_objects: int | None = None,
    distractor: bool = True,
    min_objects: int = MIN_OBJECTS,
    geometry: Geometry = DEFAULT,
) -> Scene:
    """A random scene: ``n_objects`` shapes (default uniform in [min_objects, MAX_OBJECTS]) in distinct cells, with
    random shapes and colours, plus the logo in another cell if ``distractor``. The draws do not depend on
    ``geometry``: the same ``rng`` state gives the same board in every geometry."""
    if n_objects is None:
        n_objects = int(rng.integers(min_objects, MAX_OBJECTS + 1))
    check_int("n_objects", n_objects, minimum=0, maximum=GRID * GRID - 1)
    cells = rng.choice(GRID * GRID, size=n_objects + 1, replace=False)
    colours = list(COLOURS)
    things = tuple(
        Thing(int(c) // GRID, int(c) % GRID, SHAPES[int(rng.integers(len(SHAPES)))], colours[int(rng.integers(6))])
        for c in cells[:n_objects]
    )
    logo = None
    if distractor:
        logo = Thing(int(cells[-1]) // GRID, int(cells[-1]) % GRID, LOGO, colours[int(rng.integers(len(colours)))])
    return Scene(things, logo, geometry)


def _unique(things, attribute: str) -> list[Thing]:
    values = [getattr(t, attribute) for t in things]
    return [t for t in things if values.count(getattr(t, attribute)) == 1]


def ask(scene: Scene, kind: str, rng: np.random.Generator) -> Question | None:
    """A random question of ``kind`` about ``scene``, or ``None`` when the scene cannot support one (no shape
    unique in the scene for ``colour``, no logo for ``logo``, ...). Its evidence is every patch the deciding
    objects cover in the scene's geometry."""
    check_choice("kind", kind, IMAGE_KINDS)
    things = scene.things
    occupied = scene.geometry.patches_of(scene.occupied)
    if kind == "colour":
        options = _unique(things, "shape")
        if not options:
            return None
        t = options[int(rng.integers(len(options)))]
        return Question(kind, f"what colour is the {t.shape} ?", t.colour, scene.patches(t))
    if kind == "shape":
        options = _unique(things, "colour")
        if not options:
            return None
        t = options[int(rng.integers(len(options)))]
        return Question(kind, f"what shape is the {t.colour} one ?", t.shape, scene.patches(t))
    if kind == "logo":
        if scene.logo is None:
            return None
        return Question(kind, "what colour is the logo ?", scene.logo.colour, scene.patches(scene.logo))
    if kind == "count":
        return Question(kind, "how many shapes are there ?", NUMBERS[len(things)], occupied)
    # exist: half yes (an object of the scene), half no (a near miss half of the time, else any absent pair)
    present = {(t.colour, t.shape) for t in things}
    if things and rng.random() < 0.5:
        t = things[int(rng.integers(len(things)))]
        return Question(kind, f"is there a {t.colour} {t.shape} ?", "yes", scene.patches(t))
    colours = list(COLOURS)
    if things and rng.random() < 0.5:
        t = things[int(rng.integers(len(things)))]
        if rng.random() < 0.5:
            candidates = [(t.colour, s) for s in SHAPES if (t.colour, s) not in present]
        else:
            candidates = [(c, t.shape) for c in colours if (c, t.shape) not in present]
    else:
        candidates = [(c, s) for c in colours for s in SHAPES if (c, s) not in present]
    colour, shape = candidates[int(rng.integers(len(candidates)))]
    # Ruling a pair out needs every shape of the scene.
    return Question(kind, f"is there a {colour} {shape} ?", "no", occupied)


def sample(
    rng: np.random.Generator, kinds=IMAGE_KINDS, weights=None, *, distractor: bool = True, **scene_options
) -> tuple[Scene, Question]:
    """A scene and a question about it, the kind drawn from ``kinds`` with probabilities ``weights``
    (``scene_options``: those of :func:`make_scene`, ``geometry`` included)."""
    kinds = tuple(kinds)
    for kind in kinds:
        check_choice("kind", kind, IMAGE_KINDS)
    p = None if weights is None else np.asarray(weights, float) / np.sum(weights)
    kind = kinds[int(rng.choice(len(kinds), p=p))]
    while True:
        scene = make_scene(rng, distractor=distractor, **scene_options)
        question = ask(scene, kind, rng)
        if question is not None:
            return scene, question


def answers(kind: str) -> tuple[str, ...]:
    """Every answer a question of ``kind`` can have (for the answer prior and restricted decoding)."""
    check_choice("kind", kind, QUESTION_KINDS)
    if kind in ("colour", "logo", "event_colour"):
        return tuple(COLOURS)
    if kind in ("shape", "event_order"):
        return SHAPES
    if kind == "count":
        return NUMBERS[MIN_OBJECTS : MAX_OBJECTS + 1]
    if kind == "event_count":
        return NUMBERS[1 : len(SHAPES) + 1]
    return ("yes", "no")


def describe(scene: Scene) -> str:
    """A short caption listing the scene's shapes in reading order, e.g. ``"a red circle , a blue cross"``."""
    things = sorted(scene.things, key=lambda t: t.patch)
    if not things:
        return "nothing"
    return " , ".join(f"a {t.colour} {t.shape}" for t in things)


def vocabulary() -> list[str]:
    """Every word the question, answer and caption generators can emit."""
    words = "what colour is the shape one logo how many shapes are there ? a , yes no nothing"
    words += " which appears first or appear that"
    out = words.split() + list(COLOURS) + list(SHAPES) + list(NUMBERS)
    return list(dict.fromkeys(out))


# --------------------------------------------------------------------------------------------------------------
# Videos
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """A shape that appears in an empty cell at frame ``start`` and is gone at frame ``stop``."""

    thing: Thing
    start: int
    stop: int

    @property
    def frames(self) -> tuple[int, ...]:
        return tuple(range(self.start, self.stop))


@dataclass(frozen=True)
class Video:
    """A background scene and events on it; :meth:`frame` draws one frame, :meth:`frames` all of them."""

    background: Scene
    events: tuple[Event, ...]
    n_frames: int
    questions: tuple[Question, ...] = field(default=())

    def scene_at(self, t: int) -> Scene:
        visible = tuple(e.thing for e in self.events if e.start <= t < e.stop)
        return Scene(self.background.things + visible, self.background.logo)

    def frame(self, t: int) -> np.ndarray:
        return render(self.scene_at(t))

    def frames(self) -> np.ndarray:
        """All frames: ``uint8`` array (n_frames, IMAGE_SIZE, IMAGE_SIZE, 3)."""
        return np.stack([self.frame(t) for t in range(self.n_frames)])

    def descriptions(self) -> list[str]:
        """One caption per frame (:func:`describe`)."""
        return [describe(self.scene_at(t)) for t in range(self.n_frames)]


def make_video(
    rng: np.random.Generator,
    *,
    n_frames: int = 16,
    n_events: int = 3,
    min_duration: int = 2,
    max_duration: int = 4,
    n_background: int = 2,
    distractor: bool = True,
) -> Video:
    """A video of ``n_frames`` frames: a background of ``n_background`` shapes (colours and shapes never used by
    the events) on which ``n_events`` events happen, each a distinct shape appearing in its own empty cell for
    ``min_duration``–``max_duration`` frames, at distinct start frames; with its temporal questions."""
    check_int("n_events", n_events, minimum=1, maximum=len(SHAPES) - 1)
    check_int("n_frames", n_frames, minimum=n_events + max_duration)
    if not 1 <= min_duration <= max_duration:
        raise ParameterError(
            f"durations must satisfy 1 ≤ min_duration ≤ max_duration, got {min_duration}, {max_duration}"
        )
    shapes = [SHAPES[int(i)] for i in rng.permutation(len(SHAPES))]
    event_shapes, background_shape = shapes[:n_events], shapes[n_events]
    colours = list(COLOURS)
    cells = rng.choice(GRID * GRID, size=n_background + n_events + 1, replace=False)
    background = tuple(
        Thing(int(c) // GRID, int(c) % GRID, background_shape, colours[int(rng.integers(6))])
        for c in cells[:n_background]
    )
    logo = Thing(int(cells[-1]) // GRID, int(cells[-1]) % GRID, LOGO, colours[0]) if distractor else None
    starts = np.sort(rng.choice(n_frames - max_duration + 1, size=n_events, replace=False))
    events = []
    for i, start in enumerate(starts):
        cell = int(cells[n_background + i])
        duration = int(rng.integers(min_duration, max_duration + 1))
        thing = Thing(cell // GRID, cell % GRID, event_shapes[i], colours[int(rng.integers(6))])
        events.append(Event(thing, int(start), int(start) + duration))
    video = Video(Scene(background, logo), tuple(events), n_frames)
    return Video(video.background, video.events, n_frames, _video_questions(video, rng))


def _video_questions(video: Video, rng: np.random.Generator) -> tuple[Question, ...]:
    """One question of each temporal kind (the order question needs two events)."""
    events = video.events
    e = events[int(rng.integers(len(events)))]
    questions = [
        Question(
            "event_colour",
            f"what colour is the {e.thing.shape} that appears ?",
            e.thing.colour,
            (e.thing.patch,),
            e.frames,
        ),
        Question(
            "event_count",
            "how many shapes appear ?",
            NUMBERS[len(events)],
            tuple(sorted(x.thing.patch for x in events)),
            tuple(sorted({t for x in events for t in x.frames})),
        ),
    ]
    if len(events) >= 2:
        i, j = sorted(int(k) for k in rng.choice(len(events), 2, replace=False))
        first, second = (events[i], events[j]) if rng.random() < 0.5 else (events[j], events[i])
        questions.append(
            Question(
                "event_order",
                f"which appears first , the {first.thing.shape} or the {second.thing.shape} ?",
                events[i].thing.shape,
                tuple(sorted({events[i].thing.patch, events[j].thing.patch})),
                tuple(sorted(set(events[i].frames) | set(events[j].frames))),
            )
        )
    return tuple(questions)
