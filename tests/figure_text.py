"""Reading a rendered figure's text back: what clips or overlaps (used by the figure tests)."""


def overlaps(fig) -> list[str]:
    """Text of the figure (titles, axis labels, the labels of drawn ticks) that overlaps other text or leaves the
    canvas, read back from the rendered figure's bounding boxes."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    canvas = fig.bbox
    boxes = []
    for ax in fig.axes:
        (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
        ticks = [t for t in ax.get_xticklabels() if x0 <= t.get_position()[0] <= x1]  # labels of drawn ticks
        ticks += [t for t in ax.get_yticklabels() if y0 <= t.get_position()[1] <= y1]
        items = [ax.title, ax.xaxis.label, ax.yaxis.label, *ticks]
        boxes += [(t.get_text(), t.get_window_extent(renderer)) for t in items if t.get_visible() and t.get_text()]
    problems = [
        name
        for name, b in boxes
        if b.x0 < canvas.x0 - 1 or b.x1 > canvas.x1 + 1 or b.y0 < canvas.y0 - 1 or b.y1 > canvas.y1 + 1
    ]
    for i, (name, b) in enumerate(boxes):
        for other, c in boxes[i + 1 :]:
            if b.overlaps(c) and b.width > 0 and c.width > 0:
                inter_w = min(b.x1, c.x1) - max(b.x0, c.x0)
                inter_h = min(b.y1, c.y1) - max(b.y0, c.y0)
                if inter_w > 1 and inter_h > 1:
                    problems.append(f"{name!r} / {other!r}")
    return problems
