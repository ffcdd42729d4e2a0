package bench

import (
	"fmt"
	"image/color"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

var (
	colorCommit = color.RGBA{R: 0xd6, G: 0x4f, B: 0x1e, A: 0xff}
	colorSubmit = color.RGBA{R: 0x1f, G: 0x6f, B: 0xb4, A: 0xff}
	colorBlock  = color.RGBA{R: 0x2c, G: 0x9c, B: 0x4a, A: 0xff}
	colorBench  = color.RGBA{R: 0x80, G: 0x80, B: 0x80, A: 0xff}
	colorGoSys  = color.RGBA{R: 0x8e, G: 0x44, B: 0xad, A: 0xff}
	colorPebble = color.RGBA{R: 0xc9, G: 0x9a, B: 0x06, A: 0xff}
	colorLive   = color.RGBA{R: 0x17, G: 0xa2, B: 0xb8, A: 0xff}
)

// WriteChart draws the run as a PNG: committed and admitted TPS over time
// above, and the latency CDFs below.
func (r *Report) WriteChart(path string) error {
	s := r.Series
	if s == nil {
		return fmt.Errorf("bench: this report has no series to chart")
	}
	top := plot.New()
	steady := "n/a"
	if r.WindowSteady.Note == "" {
		steady = fmt.Sprintf("%.0f", r.SteadyTPS)
	}
	top.Title.Text = fmt.Sprintf("%s: committed %.0f tx/s (steady %s), admitted %.0f tx/s", r.Scheme, r.CommittedTPS, steady, r.SubmitTPS)
	top.X.Label.Text = "seconds since the first submission"
	top.Y.Label.Text = "transactions per second"
	top.Add(plotter.NewGrid())
	if err := addLine(top, "committed (per block, block timestamps)", s.BlockX, s.BlockY, colorCommit, true); err != nil {
		return err
	}
	if err := addLine(top, "admitted (per 0.5 s)", s.SubmitX, s.SubmitY, colorSubmit, false); err != nil {
		return err
	}
	top.Legend.Top = true
	top.X.Min, top.Y.Min = 0, 0

	bottom := plot.New()
	bottom.Title.Text = fmt.Sprintf("latency CDF: p50 %.0f ms, p99 %.0f ms to inclusion (block interval %d ms)", r.P50Ms, r.P99Ms, r.BlockIntervalMs)
	bottom.X.Label.Text = "milliseconds after submission"
	bottom.Y.Label.Text = "fraction of transactions"
	bottom.Add(plotter.NewGrid())
	for _, c := range []struct {
		name string
		v    []float64
		col  color.Color
	}{
		{"submit → inclusion seen", s.Inclusion, colorCommit},
		{"submit → block timestamp", s.BlockTime, colorBlock},
		{"submit → ack", s.Ack, colorSubmit},
	} {
		x, y := cdf(c.v, 400)
		if err := addLine(bottom, c.name, x, y, c.col, false); err != nil {
			return err
		}
	}
	bottom.Y.Min, bottom.Y.Max = 0, 1
	bottom.Legend.Top = false
	bottom.Legend.Left = false
	bottom.Legend.YOffs = vg.Points(40)

	const w, h = 10 * vg.Inch, 9 * vg.Inch
	img := vgimg.New(w, h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadTop: vg.Points(8), PadBottom: vg.Points(8), PadLeft: vg.Points(8), PadRight: vg.Points(16), PadY: vg.Points(24)}
	canvases := plot.Align([][]*plot.Plot{{top}, {bottom}}, tiles, dc)
	top.Draw(canvases[0][0])
	bottom.Draw(canvases[1][0])
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("bench: chart: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

func addLine(p *plot.Plot, name string, x, y []float64, c color.Color, points bool) error {
	if len(x) == 0 {
		return nil
	}
	xys := make(plotter.XYs, len(x))
	for i := range x {
		xys[i].X, xys[i].Y = x[i], y[i]
	}
	l, err := plotter.NewLine(xys)
	if err != nil {
		return fmt.Errorf("bench: chart: %w", err)
	}
	l.Color = c
	l.Width = vg.Points(1.5)
	p.Add(l)
	p.Legend.Add(name, l)
	if points {
		sc, err := plotter.NewScatter(xys)
		if err != nil {
			return fmt.Errorf("bench: chart: %w", err)
		}
		sc.Color = c
		sc.Radius = vg.Points(2)
		p.Add(sc)
	}
	return nil
}

// cdf samples the empirical CDF of sorted at up to n points (every value
// when there are fewer), always keeping the last.
func cdf(sorted []float64, n int) (x, y []float64) {
	m := len(sorted)
	if m == 0 {
		return nil, nil
	}
	step := max(1, m/n)
	for i := step - 1; i < m; i += step {
		x = append(x, sorted[i])
		y = append(y, float64(i+1)/float64(m))
	}
	if x[len(x)-1] != sorted[m-1] || y[len(y)-1] != 1 {
		x = append(x, sorted[m-1])
		y = append(y, 1)
	}
	return x, y
}
