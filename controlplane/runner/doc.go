// Package runner runs a function at a bounded frequency, like kube-proxy's
// BoundedFrequencyRunner: never more often than MinInterval, at least every
// MaxInterval (the periodic full resync), as soon as allowed after Trigger,
// and again after an exponential backoff when the function fails.
//
// Trigger never blocks and a burst of triggers collapses into one pending
// run. All timing goes through an injected clock (k8s.io/utils/clock), so
// tests drive it with a fake clock.
//
// # Differences from kube-proxy's runner
//
//   - kube-proxy retries a failed run after a fixed retryInterval (or sooner
//     on Run). Here the n-th consecutive failure is retried after
//     RetryInitial·2^(n-1), capped at RetryMax and MaxInterval, and a
//     Trigger during that backoff waits for it to end, so a broken
//     dataplane is not hammered at MinInterval. A success resets the backoff.
//   - kube-proxy measures MinInterval after the previous run ends; so does
//     this runner. A run that the first Trigger asks for starts at once.
//   - A panic in the function is not recovered (kube-proxy's HandleCrash
//     re-panics too).
package runner
