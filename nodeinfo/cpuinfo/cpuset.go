package cpuinfo

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// CPUSet is a sorted set of CPU numbers. It marshals as a cpulist string
// ("0-3,8").
type CPUSet []int

// NewCPUSet returns the sorted, de-duplicated set of cpus.
func NewCPUSet(cpus ...int) CPUSet {
	s := slices.Clone(cpus)
	slices.Sort(s)
	return CPUSet(slices.Compact(s))
}

// ParseCPUList parses the kernel's cpulist format: "0-3,8,10-11". An empty
// string is the empty set.
func ParseCPUList(s string) (CPUSet, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("cpulist %q: %w", s, err)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return nil, fmt.Errorf("cpulist %q: %w", s, err)
			}
		}
		if b < a || b-a > 1<<16 {
			return nil, fmt.Errorf("cpulist %q: bad range %s", s, part)
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	return NewCPUSet(out...), nil
}

// String renders the set as a cpulist.
func (s CPUSet) String() string {
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j+1 < len(s) && s[j+1] == s[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		if j == i {
			fmt.Fprintf(&b, "%d", s[i])
		} else {
			fmt.Fprintf(&b, "%d-%d", s[i], s[j])
		}
		i = j + 1
	}
	return b.String()
}

// MarshalText renders the set as a cpulist.
func (s CPUSet) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a cpulist.
func (s *CPUSet) UnmarshalText(b []byte) error {
	v, err := ParseCPUList(string(b))
	*s = v
	return err
}

// Contains reports whether cpu is in the set.
func (s CPUSet) Contains(cpu int) bool {
	_, ok := slices.BinarySearch(s, cpu)
	return ok
}

// Union returns s ∪ o.
func (s CPUSet) Union(o CPUSet) CPUSet { return NewCPUSet(append(slices.Clone(s), o...)...) }

// Intersect returns s ∩ o.
func (s CPUSet) Intersect(o CPUSet) CPUSet {
	var out []int
	for _, c := range s {
		if o.Contains(c) {
			out = append(out, c)
		}
	}
	return CPUSet(out)
}

// Minus returns s \ o.
func (s CPUSet) Minus(o CPUSet) CPUSet {
	var out []int
	for _, c := range s {
		if !o.Contains(c) {
			out = append(out, c)
		}
	}
	return CPUSet(out)
}
