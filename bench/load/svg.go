package load

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// lineChart is a chart of lines drawn as inline SVG: no script, no external
// resource, so the report works offline.
type lineChart struct {
	title, xLabel, yLabel string
	series                []series
	// step draws each line as steps (a CDF) instead of straight segments.
	step bool
	// fromZero starts the x axis at 0, so that values read against it.
	fromZero bool
}

type series struct {
	name string
	pts  [][2]float64
	dash bool
}

// palette holds colors that stay apart for the color-blind (Okabe-Ito).
var palette = []string{"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"}

const (
	chartW, chartH                       = 720, 300
	padLeft, padRight, padTop, padBottom = 64, 16, 28, 44
	plotW, plotH                         = chartW - padLeft - padRight, chartH - padTop - padBottom
	legendRowH                           = 16
	emptyChartText                       = "no data"
)

// svg renders the chart.
func (c lineChart) svg() string {
	xmin, xmax, ymin, ymax := math.Inf(1), math.Inf(-1), 0.0, math.Inf(-1)
	n := 0
	for _, s := range c.series {
		for _, p := range s.pts {
			xmin, xmax, ymax = min(xmin, p[0]), max(xmax, p[0]), max(ymax, p[1])
			ymin = min(ymin, p[1])
			n++
		}
	}
	legendH := legendRowH * len(c.series)
	h := chartH + legendH
	var b strings.Builder
	fmt.Fprintf(&b, `<svg role="img" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`, chartW, h, chartW, h)
	fmt.Fprintf(&b, `<title>%s</title>`, html.EscapeString(c.title))
	fmt.Fprintf(&b, `<text x="%d" y="16" font-size="13" font-weight="bold">%s</text>`, padLeft, html.EscapeString(c.title))
	if n == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#777">%s</text></svg>`, chartW/2-20, chartH/2, emptyChartText)
		return b.String()
	}
	if c.fromZero {
		xmin = min(xmin, 0)
	}
	if xmax == xmin {
		xmin, xmax = xmin-1, xmax+1
	}
	if ymax == ymin {
		ymax = ymin + 1
	}
	xt, yt := niceTicks(xmin, xmax, 8), niceTicks(ymin, ymax, 5)
	xmin, xmax = min(xmin, xt[0]), max(xmax, xt[len(xt)-1])
	ymin, ymax = min(ymin, yt[0]), max(ymax, yt[len(yt)-1])
	px := func(x float64) float64 { return padLeft + (x-xmin)/(xmax-xmin)*plotW }
	py := func(y float64) float64 { return padTop + plotH - (y-ymin)/(ymax-ymin)*plotH }

	// Grid, ticks and labels.
	for _, y := range yt {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#e4e4e4"/>`, padLeft, padLeft+plotW, py(y), py(y))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`, padLeft-6, py(y), tickText(y))
	}
	for _, x := range xt {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#f0f0f0"/>`, px(x), px(x), padTop, padTop+plotH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`, px(x), padTop+plotH+14, tickText(x))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>`, padLeft, padTop, plotW, plotH)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`, padLeft+plotW/2, padTop+plotH+32, html.EscapeString(c.xLabel))
	fmt.Fprintf(&b, `<text transform="translate(14 %d) rotate(-90)" text-anchor="middle">%s</text>`, padTop+plotH/2, html.EscapeString(c.yLabel))

	// Lines and legend.
	for i, s := range c.series {
		color := palette[i%len(palette)]
		var d strings.Builder
		for j, p := range s.pts {
			switch {
			case j == 0:
				fmt.Fprintf(&d, "M%.1f %.1f", px(p[0]), py(p[1]))
			case c.step:
				fmt.Fprintf(&d, "H%.1f V%.1f", px(p[0]), py(p[1]))
			default:
				fmt.Fprintf(&d, "L%.1f %.1f", px(p[0]), py(p[1]))
			}
		}
		dash := ""
		if s.dash {
			dash = ` stroke-dasharray="5 3"`
		}
		fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="1.8"%s/>`, d.String(), color, dash)
		if len(s.pts) == 1 {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`, px(s.pts[0][0]), py(s.pts[0][1]), color)
		}
		ly := chartH + i*legendRowH + 4
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="3"%s/>`, padLeft, padLeft+24, ly, ly, color, dash)
		fmt.Fprintf(&b, `<text x="%d" y="%d" dominant-baseline="middle">%s</text>`, padLeft+30, ly, html.EscapeString(s.name))
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// niceTicks returns about n round tick values covering [lo, hi].
func niceTicks(lo, hi float64, n int) []float64 {
	span := hi - lo
	if span <= 0 || math.IsInf(span, 0) || math.IsNaN(span) {
		return []float64{lo}
	}
	raw := span / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var ticks []float64
	for v := math.Floor(lo/step) * step; v <= hi+step*1e-9; v += step {
		ticks = append(ticks, v)
		if len(ticks) > 4*n {
			break
		}
	}
	if ticks[len(ticks)-1] < hi {
		ticks = append(ticks, ticks[len(ticks)-1]+step)
	}
	return ticks
}

func tickText(v float64) string {
	if math.Abs(v) < 1e-9 {
		return "0"
	}
	a := math.Abs(v)
	switch {
	case a >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case a >= 1e4:
		return fmt.Sprintf("%.3gk", v/1e3)
	case a >= 1:
		return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
	}
	return fmt.Sprintf("%.3g", v)
}
