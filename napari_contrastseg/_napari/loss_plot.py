"""A small live loss plot drawn with QPainter (no plotting library, cheap to repaint)."""

from __future__ import annotations

import math

from qtpy.QtCore import QPointF, QRectF, QSize, Qt
from qtpy.QtGui import QColor, QPainter, QPainterPath, QPen
from qtpy.QtWidgets import QSizePolicy, QWidget

COLORS = ("#f0f0f0", "#4fc3f7", "#ffb74d", "#81c784", "#e57373", "#ba68c8", "#fff176")
MAX_POINTS = 2000


class LossPlot(QWidget):
    """Loss terms against iteration, log scale; ``total`` drawn brightest. Dashed lines mark warm starts."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(110)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.series: dict[str, list[tuple[float, float]]] = {}
        self.marks: list[float] = []
        self.setToolTip("Training loss (log scale) against iteration; dashed lines: Continue from earlier weights.")

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(260, 120)

    def clear(self) -> None:
        self.series.clear()
        self.marks.clear()
        self.update()

    def mark(self, iteration: float) -> None:
        """A vertical dashed line (e.g. where a warm-started run begins)."""
        self.marks.append(iteration)
        self.update()

    def add(self, iteration: float, losses: dict[str, float]) -> None:
        for name, value in losses.items():
            if value is None or not math.isfinite(value) or value <= 0:
                continue
            points = self.series.setdefault(name, [])
            points.append((float(iteration), float(value)))
            if len(points) > MAX_POINTS:
                del points[::2]  # thin out old points, keep the shape
        self.update()

    @property
    def last_iteration(self) -> float:
        return max((p[-1][0] for p in self.series.values() if p), default=0.0)

    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt API
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect()).adjusted(34, 6, -6, -16)
        painter.setPen(QPen(QColor("#707070")))
        painter.drawRect(rect)
        points = [p for s in self.series.values() for p in s]
        if not points:
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, "loss appears here while training")
            return
        x0 = min(p[0] for p in points)
        x1 = max(max(p[0] for p in points), x0 + 1)
        ys = [math.log10(p[1]) for p in points]
        y0, y1 = min(ys), max(ys)
        if y1 - y0 < 0.1:
            y0, y1 = y0 - 0.05, y1 + 0.05

        def to_screen(x: float, y: float) -> QPointF:
            fx = (x - x0) / (x1 - x0)
            fy = (math.log10(y) - y0) / (y1 - y0)
            return QPointF(rect.left() + fx * rect.width(), rect.bottom() - fy * rect.height())

        painter.setPen(QPen(QColor("#a0a0a0")))
        font = painter.font()
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.8))
        painter.setFont(font)
        painter.drawText(QRectF(0, rect.top() - 4, 32, 14), Qt.AlignmentFlag.AlignRight, f"{10**y1:.2g}")
        painter.drawText(QRectF(0, rect.bottom() - 10, 32, 14), Qt.AlignmentFlag.AlignRight, f"{10**y0:.2g}")
        painter.drawText(QRectF(rect.left(), rect.bottom() + 1, 60, 14), Qt.AlignmentFlag.AlignLeft, f"{x0:.0f}")
        painter.drawText(QRectF(rect.right() - 60, rect.bottom() + 1, 60, 14), Qt.AlignmentFlag.AlignRight, f"{x1:.0f}")
        dash = QPen(QColor("#909090"))
        dash.setStyle(Qt.PenStyle.DashLine)
        painter.setPen(dash)
        for x in self.marks:
            if x0 <= x <= x1:
                p = to_screen(x, 10**y0)
                painter.drawLine(QPointF(p.x(), rect.top()), QPointF(p.x(), rect.bottom()))
        names = sorted(self.series, key=lambda n: (n != "total", n))
        legend_x = rect.left() + 4
        for i, name in enumerate(names):
            color = QColor(COLORS[i % len(COLORS)])
            pen = QPen(color)
            pen.setWidthF(2.0 if name == "total" else 1.2)
            painter.setPen(pen)
            path = QPainterPath()
            for j, (x, y) in enumerate(self.series[name]):
                (path.moveTo if j == 0 else path.lineTo)(to_screen(x, y))
            painter.drawPath(path)
            painter.drawText(QPointF(legend_x, rect.top() + 11), name)
            legend_x += painter.fontMetrics().horizontalAdvance(name) + 10
