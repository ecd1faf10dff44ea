package session

import "strconv"

// NetnsSysctls is the send sysctls of one network namespace that the
// session's events came from, other than the one the header holds. Every
// network namespace (every container or pod) has its own tcp_retries2,
// keepalive and buffer settings.
type NetnsSysctls struct {
	Netns Netns `json:"netns"`
	// Comm is the command of the process whose namespace was entered.
	Comm string `json:"comm,omitempty"`
	// Sysctls is empty when the namespace could not be read; Netns.Note
	// says why.
	Sysctls        map[string]string `json:"sysctls"`
	SysctlsMissing []string          `json:"sysctls_missing,omitempty"`
}

// NetnsName is how a namespace inode is shown: the form
// `readlink /proc/PID/ns/net` prints.
func NetnsName(inode uint64) string {
	if inode == 0 {
		return "net:[?]"
	}
	return "net:[" + strconv.FormatUint(inode, 10) + "]"
}
