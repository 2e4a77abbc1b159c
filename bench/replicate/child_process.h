// The processes of the replicate scenario: each system's servers (ringmesh_node, nats-server,
// etcd) and the load tool, started with their output in a log file and ended by PID. Every
// wait is bounded; nothing here outlives the harness (the destructor of a cluster kills what
// it started).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace ringmesh::bench {

struct child_process {
    std::string name;
    std::string log;  ///< stdout and stderr
    pid_t pid = -1;
    bool running() const { return pid > 0; }
};

/// Starts `program` with `args`, its output appended to `log`. pid stays -1 when fork fails;
/// an exec failure shows as exit status 127 and a line in the log.
child_process spawn_child(const std::string& name, const std::string& program,
                          const std::vector<std::string>& args, const std::string& log);
/// Waits up to `seconds` for the child to exit: its exit status, 128+signal when a signal
/// ended it, or -1 when it is still running.
int wait_child(child_process& c, double seconds);
/// Sends `signal` and waits up to `seconds`; SIGKILL after that. Returns the exit status.
int stop_child(child_process& c, int signal, double seconds = 10);

/// Polls until something accepts TCP connections on 127.0.0.1:`port` (false after `seconds`,
/// or at once when `c` exited).
bool wait_listening(const child_process& c, int port, double seconds);
/// The last lines of a log, for an error message.
std::string tail_of(const std::string& log, std::size_t bytes = 600);
/// An installed program (or `name` itself when it has a slash), empty when there is none.
std::string find_program(const std::string& name);
/// dir/file.
std::string in_dir(const std::string& dir, const std::string& file);

/// A port block nobody else in this run uses: base + 0..count-1.
int reserve_ports(int count);

}  // namespace ringmesh::bench
