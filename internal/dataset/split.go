package dataset

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
)

// Split divides n records, labelled by class, into evaluation, training
// and validation index sets. It never fails and never puts an index in two
// sets:
//
//   - evalSize is capped so that at least one record is left for training
//     (and one for validation when valRatio > 0 and there are 3 or more
//     records); with a single record everything goes to eval.
//   - The validation set is round(valRatio × the rest), at least 1 when
//     valRatio > 0 and the rest has 2 or more records, and never all of it.
//     valRatio <= 0 gives no validation set.
//   - Both cuts are stratified: classes with one member are pooled as
//     "others"; each class gets its proportional share, the leftover slots
//     going to the classes with the largest remainders (ties broken by rng).
//     A single class, or many singleton classes, degrade to a random split.
//
// Within a class, which records go where is drawn by rng.
func Split(labels []string, evalSize int, valRatio float64, rng *rand.Rand) (eval, train, val []int) {
	n := len(labels)
	if n == 0 {
		return nil, nil, nil
	}
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	reserve := 1
	if valRatio > 0 && n >= 3 {
		reserve = 2
	}
	evalSize = max(0, min(evalSize, n-reserve))
	if n == 1 {
		evalSize = 1
	}
	eval, rest := stratified(all, labels, evalSize, rng)

	valSize := 0
	if valRatio > 0 && len(rest) >= 2 {
		valSize = int(math.Round(valRatio * float64(len(rest))))
		valSize = max(1, min(valSize, len(rest)-1))
	}
	val, train = stratified(rest, labels, valSize, rng)
	slices.Sort(eval)
	slices.Sort(train)
	slices.Sort(val)
	return eval, train, val
}

// stratified picks k of idx, proportionally to their classes, and returns
// the picked and the rest.
func stratified(idx []int, labels []string, k int, rng *rand.Rand) (picked, rest []int) {
	if k <= 0 {
		return nil, slices.Clone(idx)
	}
	if k >= len(idx) {
		return slices.Clone(idx), nil
	}
	count := map[string]int{}
	for _, i := range idx {
		count[labels[i]]++
	}
	classOf := func(i int) string {
		if count[labels[i]] == 1 {
			return toolNameOthers
		}
		return labels[i]
	}
	members := map[string][]int{}
	var names []string
	for _, i := range idx {
		c := classOf(i)
		if _, ok := members[c]; !ok {
			names = append(names, c)
		}
		members[c] = append(members[c], i)
	}
	slices.Sort(names) // map order must not leak into the draw
	type share struct {
		name  string
		quota int
		frac  float64
		tie   uint64
	}
	shares := make([]share, len(names))
	total := 0
	n := float64(len(idx))
	for j, name := range names {
		exact := float64(k) * float64(len(members[name])) / n
		q := int(math.Floor(exact))
		shares[j] = share{name: name, quota: q, frac: exact - float64(q), tie: rng.Uint64()}
		total += q
	}
	order := slices.Clone(shares)
	slices.SortFunc(order, func(a, b share) int {
		if c := cmp.Compare(b.frac, a.frac); c != 0 {
			return c
		}
		return cmp.Compare(a.tie, b.tie)
	})
	quota := map[string]int{}
	for _, s := range shares {
		quota[s.name] = s.quota
	}
	for left := k - total; left > 0; {
		progressed := false
		for _, s := range order {
			if left == 0 {
				break
			}
			if quota[s.name] < len(members[s.name]) {
				quota[s.name]++
				left--
				progressed = true
			}
		}
		if !progressed {
			break
		}
	}
	for _, name := range names {
		m := members[name]
		rng.Shuffle(len(m), func(a, b int) { m[a], m[b] = m[b], m[a] })
		q := quota[name]
		picked = append(picked, m[:q]...)
		rest = append(rest, m[q:]...)
	}
	return picked, rest
}
