// Package hostfs names the sysfs and procfs roots that node discovery reads.
// Production uses Real() ("/sys" and "/proc"); tests point FS at a
// directory tree built in t.TempDir(), or at a sysfs mounted from inside a
// network namespace.
package hostfs
