package eval

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// Bootstrap settings.
const (
	// BootstrapResamplesDefault is the number of bootstrap resamples.
	BootstrapResamplesDefault = 1000
	// BootstrapMaxN is the sample size above which the 95% interval is the
	// normal one (mean ± 1.96 standard errors), which the percentile
	// bootstrap converges to; it keeps aggregation linear in the number of
	// items.
	BootstrapMaxN = 20000
)

// Bootstrap configures the bootstrap confidence intervals. The same seed
// gives the same intervals.
type Bootstrap struct {
	Resamples int
	Seed      uint64
}

func (b Bootstrap) resamples() int {
	if b.Resamples <= 0 {
		return BootstrapResamplesDefault
	}
	return b.Resamples
}

// Describe returns the sample count, mean, standard error of the mean and
// a bootstrap 95% percentile interval of values. NaN values are skipped.
// For 0/1 values the interval is the exact bootstrap one (binomial
// quantiles); otherwise it comes from b.Resamples seeded resamples, or is
// the normal interval above BootstrapMaxN values.
func Describe(values []float64, b Bootstrap) flywheel.ScoreDetail {
	vals := make([]float64, 0, len(values))
	for _, v := range values {
		if !math.IsNaN(v) {
			vals = append(vals, v)
		}
	}
	n := len(vals)
	if n == 0 {
		return flywheel.ScoreDetail{}
	}
	var sum float64
	for _, v := range vals {
		sum += v
	}
	mean := sum / float64(n)
	d := flywheel.ScoreDetail{N: n, Mean: mean, CILow: mean, CIHigh: mean}
	if n < 2 {
		return d
	}
	var ss float64
	for _, v := range vals {
		ss += (v - mean) * (v - mean)
	}
	d.StdErr = math.Sqrt(ss/float64(n-1)) / math.Sqrt(float64(n))
	if d.StdErr == 0 {
		return d // every value is the same: so is every resample
	}
	if binary(vals) {
		// The bootstrap distribution of the mean of 0/1 values is exactly
		// Binomial(n, mean)/n: take its quantiles instead of sampling.
		d.CILow = binomialQuantile(n, mean, 0.025) / float64(n)
		d.CIHigh = binomialQuantile(n, mean, 0.975) / float64(n)
		return d
	}
	if n > BootstrapMaxN {
		d.CILow, d.CIHigh = mean-1.96*d.StdErr, mean+1.96*d.StdErr
		return d
	}
	rng := rand.New(rand.NewPCG(b.Seed, 0x5eed))
	means := make([]float64, b.resamples())
	un := uint64(n)
	for r := range means {
		var s float64
		for range n {
			// Multiply-shift maps a 64-bit draw onto [0, n); its bias is
			// below n/2^64.
			hi, _ := bits.Mul64(rng.Uint64(), un)
			s += vals[hi]
		}
		means[r] = s / float64(n)
	}
	slices.Sort(means)
	d.CILow, d.CIHigh = percentile(means, 0.025), percentile(means, 0.975)
	return d
}

// binary reports whether every value is 0 or 1.
func binary(vals []float64) bool {
	for _, v := range vals {
		if v != 0 && v != 1 {
			return false
		}
	}
	return true
}

// binomialQuantile returns the smallest k with P(X <= k) >= q for
// X ~ Binomial(n, p).
func binomialQuantile(n int, p, q float64) float64 {
	if p <= 0 {
		return 0
	}
	if p >= 1 {
		return float64(n)
	}
	lnN, _ := math.Lgamma(float64(n) + 1)
	lp, lq := math.Log(p), math.Log1p(-p)
	var cdf float64
	for k := 0; k <= n; k++ {
		lk, _ := math.Lgamma(float64(k) + 1)
		lnk, _ := math.Lgamma(float64(n-k) + 1)
		cdf += math.Exp(lnN - lk - lnk + float64(k)*lp + float64(n-k)*lq)
		if cdf >= q-1e-12 {
			return float64(k)
		}
	}
	return float64(n)
}

// percentile returns the p-quantile (0..1) of sorted values, linearly
// interpolated.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	pos := p * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(sorted)-1)
	frac := pos - float64(lo)
	return sorted[lo]*(1-frac) + sorted[hi]*frac
}

// Percentiles returns the requested quantiles (0..1) of values.
func Percentiles(values []float64, ps ...float64) []float64 {
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	out := make([]float64, len(ps))
	for i, p := range ps {
		out[i] = percentile(sorted, p)
	}
	return out
}
