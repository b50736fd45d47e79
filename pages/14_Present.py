"""Present: the story of one experiment for a room, in six steps; nothing on it changes anything.

A link opens it on a dataset, an experiment and a step: ``/Present?dataset=<folder or name>&
experiment=<label or part of one>&step=3`` (``target=90`` optional); the address follows the steps.
"""

from pathlib import Path

import streamlit as st

from core.present.story import NOT_MEASURED, STEPS, Story
from pages.common import layout, present, state

cache = state.cache_dir()
present.open_link(cache)
layout.header(
    "Present",
    "The answer for a room, step by step: Next and Previous only, nothing here changes anything.",
    sidebar="collapsed",
)
st.markdown(present.ROOM_CSS, unsafe_allow_html=True)
data = state.dataset()
present.unknown_dataset(data)
story = present.story(cache, data)
step = present.step(data, story)
back, where, forward = st.columns([1, 3, 1], vertical_alignment="center")
back.button("← Previous", key="present_previous", on_click=present.move, args=(-1,), disabled=step == 1)
where.markdown(f"**Step {step} of {len(STEPS)}** · {Path(data).name}")
forward.button("Next →", key="present_next", on_click=present.move, args=(1,), disabled=step == len(STEPS))
st.header(STEPS[step - 1], anchor=False)


def question(story: Story) -> None:
    st.markdown(f"### {story.opening[0]}")
    for line in story.opening[1:]:
        st.markdown(line)
    st.caption(f"The model: {story.experiment if state.technical() else story.experiment_words}.")


def curve(story: Story) -> None:
    st.plotly_chart(story.curve, key="present_curve", config={"displayModeBar": False, "staticPlot": True})
    st.caption(story.curve_caption)


def answer(story: Story) -> None:
    said, checked = story.answer
    (st.success if story.answered else st.warning)(said)
    st.markdown(checked)
    for caveat in story.caveats:
        st.warning(caveat)


def handover(story: Story) -> None:
    found = story.handover
    if isinstance(found, str) or found.alone is None or found.person is None or found.accuracy is None:
        st.info(found if isinstance(found, str) else found.words(story.target))
        return
    for column, title, value in zip(
        st.columns(3),
        ("Decided by the model alone", "Checked by a person", "Right on what it decides alone"),
        (found.alone, found.person, found.accuracy),
        strict=True,
    ):
        column.metric(title, f"{value.estimate:.0%}")
        column.markdown(f"95% interval {value.low:.0%} to {value.high:.0%}")
    st.markdown(found.words(story.target))
    st.caption(
        "How sure it must be was chosen on separate validation images. The Trust page shows other accuracies."
    )


def looks(story: Story) -> None:
    if isinstance(story.cams, str):
        st.info(story.cams)
        return
    examples, size = story.cams
    if not examples:
        st.info("The best model made no prediction on the holdout to show.")
        return
    for column, example in zip(st.columns(3), examples, strict=False):
        shown = str(example.overlay) if example.drawn else example.overlay
        column.image(shown, caption=example.caption, width=440)
    st.caption(
        f"The model trained on {size:,.0f} images per class. Red: where it found evidence for the class it "
        "named; blue: none. Only maps already drawn on the Grad-CAM page are shown."
        if all(e.drawn for e in examples)
        else f"The model trained on {size:,.0f} images per class, on images it never saw. Where it looked "
        "is not drawn yet: the Grad-CAM page draws it, and this page then shows it."
    )


def label_next(story: Story) -> None:
    if isinstance(story.next_round, str):
        st.info(story.next_round)
        return
    for line in story.next_round.words(story.target):
        st.markdown(line)


if story is None:
    st.info(NOT_MEASURED.format(name=Path(data).name))
else:
    (question, curve, answer, handover, looks, label_next)[step - 1](story)
