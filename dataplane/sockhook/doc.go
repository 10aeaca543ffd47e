// Package sockhook holds the direct tests of the socket-level programs
// (cgroup connect4, sendmsg4, recvmsg4, getpeername4). BPF_PROG_TEST_RUN
// does not run sock_addr programs, so the tests attach them to a cgroup of
// their own and open real sockets from a child process inside it.
package sockhook
