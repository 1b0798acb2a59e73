"""The synthetic scenes and videos: deterministic, answers consistent with the picture, evidence patches right."""

import numpy as np
import pytest

from llmtheory import scenes as sc
from llmtheory.params import ParameterError
from llmtheory.seeding import make_rng


def _cell(image, patch):
    row, col = divmod(patch, sc.GRID)
    return image[row * sc.CELL : (row + 1) * sc.CELL, col * sc.CELL : (col + 1) * sc.CELL]


def test_generators_are_deterministic_and_keyed_by_their_stream():
    a = [sc.sample(make_rng(3, "scenes")) for _ in range(1)] + [sc.sample(make_rng(3, "scenes", i)) for i in range(20)]
    b = [sc.sample(make_rng(3, "scenes")) for _ in range(1)] + [sc.sample(make_rng(3, "scenes", i)) for i in range(20)]
    assert a == b
    assert np.array_equal(a[0][0].image(), b[0][0].image())
    assert a[1:] != [sc.sample(make_rng(4, "scenes", i)) for i in range(20)]
    v1, v2 = sc.make_video(make_rng(0, "video")), sc.make_video(make_rng(0, "video"))
    assert v1 == v2 and np.array_equal(v1.frames(), v2.frames())


def test_the_picture_shows_exactly_the_scene():
    rng = make_rng(0, "picture")
    for _ in range(50):
        scene = sc.make_scene(rng)
        image = scene.image()
        assert image.shape == (sc.IMAGE_SIZE, sc.IMAGE_SIZE, 3) and image.dtype == np.uint8
        drawn = {t.patch: t for t in scene.things + (scene.logo,)}
        for patch in range(sc.GRID * sc.GRID):
            cell = _cell(image, patch)
            if patch not in drawn:
                assert (cell == sc.BACKGROUND).all()
            elif drawn[patch].shape == sc.LOGO:
                assert (cell == (255, 255, 255)).all(-1).any() and (cell == sc.COLOURS[drawn[patch].colour]).all(
                    -1
                ).any()
            else:
                assert (cell == sc.COLOURS[drawn[patch].colour]).all(-1).sum() >= 20
    shapes = {s: sc.render(sc.Scene((sc.Thing(0, 0, s, "red"),))) for s in sc.SHAPES}
    assert len({v.tobytes() for v in shapes.values()}) == len(sc.SHAPES)  # five distinguishable shapes


@pytest.mark.parametrize("kind", sc.IMAGE_KINDS)
def test_answers_follow_from_the_scene_and_the_evidence_patches(kind):
    rng = make_rng(0, "answers", kind)
    for _ in range(200):
        scene, question = sc.sample(rng, [kind])
        assert question.kind == kind and question.answer in sc.answers(kind)
        by_patch = {t.patch: t for t in scene.things}
        if kind == "colour":
            shape = question.text.split()[-2]
            (thing,) = [t for t in scene.things if t.shape == shape]
            assert question.answer == thing.colour and question.patches == (thing.patch,)
        elif kind == "shape":
            colour = question.text.split()[-3]
            (thing,) = [t for t in scene.things if t.colour == colour]
            assert question.answer == thing.shape and question.patches == (thing.patch,)
        elif kind == "logo":
            assert question.answer == scene.logo.colour and question.patches == (scene.logo.patch,)
        elif kind == "count":
            assert question.answer == sc.NUMBERS[len(scene.things)] and question.patches == scene.occupied
        else:
            colour, shape = question.text.split()[-3:-1]
            present = any(t.colour == colour and t.shape == shape for t in scene.things)
            assert question.answer == ("yes" if present else "no")
            if present:
                assert by_patch[question.patches[0]].colour == colour
            else:
                assert question.patches == scene.occupied
        # Painting over the evidence changes what the scene shows; the words are in the tokenizer's vocabulary.
        assert set(question.text.split()) <= set(sc.vocabulary())


def test_masking_paints_cells_with_background_and_leaves_the_rest():
    scene, question = sc.sample(make_rng(1, "mask"), ["colour"])
    image = scene.image()
    masked = sc.mask_patches(image, question.patches)
    assert (_cell(masked, question.patches[0]) == sc.BACKGROUND).all()
    others = [p for p in range(sc.GRID * sc.GRID) if p != question.patches[0]]
    assert all(np.array_equal(_cell(masked, p), _cell(image, p)) for p in others)


def test_answer_priors_are_what_the_generator_implies():
    rng = make_rng(0, "prior")
    exist = [sc.sample(rng, ["exist"])[1].answer for _ in range(2000)]
    assert 0.45 <= exist.count("yes") / len(exist) <= 0.55
    count = [sc.sample(rng, ["count"])[1].answer for _ in range(2000)]
    assert set(count) == set(sc.answers("count"))


def test_videos_have_events_and_temporal_questions_with_evidence_frames():
    rng = make_rng(0, "videos")
    for _ in range(20):
        video = sc.make_video(rng, n_frames=24, n_events=3)
        frames = video.frames()
        assert frames.shape == (24, sc.IMAGE_SIZE, sc.IMAGE_SIZE, 3)
        kinds = {q.kind: q for q in video.questions}
        assert set(kinds) == set(sc.VIDEO_KINDS)
        colour = kinds["event_colour"]
        shape = colour.text.split()[4]
        (event,) = [e for e in video.events if e.thing.shape == shape]
        assert colour.answer == event.thing.colour and colour.frames == event.frames
        for t in range(24):  # the event's cell shows the shape exactly in its frames
            shown = (_cell(frames[t], event.thing.patch) != sc.BACKGROUND).any()
            assert shown == (t in event.frames)
        assert kinds["event_count"].answer == sc.NUMBERS[3]
        order = kinds["event_order"]
        a, b = order.text.split()[5], order.text.split()[8]
        starts = {e.thing.shape: e.start for e in video.events}
        assert order.answer == min((a, b), key=starts.get)
        assert len(video.descriptions()) == 24


def test_bad_parameters_fail_clearly():
    with pytest.raises(ParameterError, match="kind"):
        sc.sample(make_rng(0), ["size"])
    with pytest.raises(ParameterError, match="n_events"):
        sc.make_video(make_rng(0), n_events=9)


def test_a_finer_geometry_cuts_the_same_pictures_into_blocks_of_patches():
    assert sc.DEFAULT == sc.Geometry() and (sc.DEFAULT.side, sc.DEFAULT.n_patches) == (6, 36)
    assert (sc.FINE.side, sc.FINE.n_patches, sc.FINE.per_cell, sc.FINE.image_size) == (12, 144, 2, 96)
    assert sc.FINE.cell_patches(7) == (26, 27, 38, 39)  # cell (1, 1): rows 2–3, columns 2–3 of 12
    assert all(sc.DEFAULT.cell_patches(c) == (c,) for c in range(36))
    for kind in sc.IMAGE_KINDS:
        coarse, fine = make_rng(5, "geometry", kind), make_rng(5, "geometry", kind)
        for _ in range(30):
            (s1, q1), (s2, q2) = sc.sample(coarse, [kind]), sc.sample(fine, [kind], geometry=sc.FINE)
            assert np.array_equal(s1.image(), s2.image()) and (q1.text, q1.answer) == (q2.text, q2.answer)
            assert q2.patches == sc.FINE.patches_of(q1.patches)  # every patch the deciding objects cover
            masked = sc.mask_patches(s2.image(), q2.patches, geometry=sc.FINE)
            assert np.array_equal(masked, sc.mask_patches(s1.image(), q1.patches))
    for bad in ({"patch": 5}, {"patch": 0}, {"cell": 4}):
        with pytest.raises(ParameterError):
            sc.Geometry(**bad)
