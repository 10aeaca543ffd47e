// Package steal measures hypervisor steal time: the share of time a
// virtual CPU was ready to run but the hypervisor ran something else. It
// parses the cpu lines of /proc/stat (steal is the 8th value), computes the
// steal fraction between two samples, and Monitor exports it as a gauge and
// logs a warning when it stays above a threshold for a configured duration.
package steal
