package model

import (
	"errors"
	"fmt"
	"time"
)

// MaxAffinityTimeout is the longest ClientIP affinity Kubernetes accepts.
const MaxAffinityTimeout = 86400 * time.Second

// Validate checks one service for what the dataplane cannot express. The
// dataplane is IPv4-only for now.
func (s *Service) Validate() error {
	var errs []error
	if len(s.Frontends) == 0 {
		errs = append(errs, errors.New("no frontends"))
	}
	for _, f := range s.Frontends {
		if !f.Addr.Is4() {
			errs = append(errs, fmt.Errorf("frontend %s: address is not IPv4", f))
		}
		if f.Port == 0 {
			errs = append(errs, fmt.Errorf("frontend %s: port 0", f))
		}
		if f.Proto != TCP && f.Proto != UDP {
			errs = append(errs, fmt.Errorf("frontend %s: unsupported protocol", f))
		}
	}
	seen := make(map[BackendKey]bool, len(s.Backends))
	for _, b := range s.Backends {
		if !b.Addr.Is4() {
			errs = append(errs, fmt.Errorf("backend %s: address is not IPv4", b))
		}
		if b.Port == 0 {
			errs = append(errs, fmt.Errorf("backend %s: port 0", b))
		}
		if seen[b.Key()] {
			errs = append(errs, fmt.Errorf("backend %s: listed twice", b))
		}
		seen[b.Key()] = true
	}
	if s.AffinityTimeout < 0 || s.AffinityTimeout > MaxAffinityTimeout {
		errs = append(errs, fmt.Errorf("affinity timeout %s out of range [0, %s]", s.AffinityTimeout, MaxAffinityTimeout))
	}
	for _, p := range s.SourceRanges {
		if !p.Addr().Is4() {
			errs = append(errs, fmt.Errorf("source range %s is not IPv4", p))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("service %s: %w", s.Name, err)
	}
	return nil
}
