/*
 * net.h -- socket helpers shared by the daemon, the client and the tests.
 * Like Redis's anet.c they never print or exit: they return 0 or a negative
 * errno, and where there is more to say (which address, what the resolver
 * said) they fill ERR, so each caller reports in its own way.
 */
#ifndef POOLECHO_NET_H
#define POOLECHO_NET_H

#include <stddef.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>

/* "cannot connect from SOURCE to [TARGET]:PORT: REASON" fits whole with
 * both addresses as long as they get shown (PE_NET_ADDRLEN) and the longest
 * reason with its hint, the local ephemeral ports' (179 bytes): 413 bytes,
 * and "; N more addresses failed too" after it. Whoever puts it in a
 * message of its own (poolecho's 512 bytes) has room for that too. */
#define PE_NET_ERRLEN 448
/* "[ipv6%scope]:port" fits, the longest link-local address's with the
 * longest interface name (15 bytes) all control characters, as \xNN. */
#define PE_NET_ADDRLEN 112

/* Resolve HOST (NULL = all addresses: "::" dual-stack, else "0.0.0.0"),
 * bind PORT and listen with BACKLOG. Returns the listening descriptor
 * (close-on-exec, SO_REUSEADDR) or a negative errno; ERR says which address failed. */
int pe_net_listen(const char *host, unsigned port, int backlog, char err[PE_NET_ERRLEN]);

/* The same, and *UNUSED (when not NULL) is how many other addresses HOST
 * resolved to, which are not listened on: one socket listens on one. */
int pe_net_listen_counted(const char *host, unsigned port, int backlog,
                          char err[PE_NET_ERRLEN], unsigned *unused);

/* Whether pe_net_listen makes its socket on SA, resolved from HOST (NULL:
 * all addresses), take IPv4 clients too (IPV6_V6ONLY off): 1 for all
 * addresses and for an IPv4-mapped address; 0 for any other IPv6 address,
 * "::" given by name included, and for an IPv4 one. */
int pe_net_dual_stack(const char *host, const struct sockaddr *sa);

/* Whether this host has an IPv6 address to serve on: with IPv6 turned off
 * (net.ipv6.conf.all.disable_ipv6=1) a socket on :: still binds, and
 * serves no one. Unknown (getifaddrs fails) counts as yes. */
bool pe_net_ipv6_has_an_address(void);

/* Connect a TCP socket to HOST:PORT (any address family the resolver
 * gives, tried in order), giving up on each address after TIMEOUT_MS (0 =
 * as long as the kernel tries). Returns the descriptor or a negative errno:
 * -ETIMEDOUT when the last one timed out; -ECONNRESET, at once, when a
 * server answered and reset the connection before it could be used (ERR
 * names its address: "ADDR reset the connection as soon as it was made"). */
int pe_net_connect_timeout(const char *host, const char *port, unsigned long timeout_ms,
                           char err[PE_NET_ERRLEN]);

/* Whether HOST is an IPv6 address with a scope after a '%' ("fe80::1%eth0",
 * "::1%1", "fe80::1%"): the address in *ADDR, and in *SCOPE what follows
 * the '%'. */
bool pe_net_scoped_ipv6(const char *host, struct in6_addr *addr, const char **scope);

/* Whether capability BIT (10: CAP_NET_BIND_SERVICE) is effective for this
 * process, in its own user namespace: 1 or 0; -1 when /proc/self/status
 * cannot tell. */
int pe_net_holds_capability(unsigned bit);

/* Whether the kernel heeds a scope (sin6_scope_id, the '%eth0' of
 * fe80::1%eth0) on ADDR: a link-local address, unicast or multicast, or an
 * interface-local multicast one. On any other it is dropped unread. */
bool pe_net_scope_heeded(const struct in6_addr *addr);

/* What is wrong with the scope of HOST, a numeric IPv6 address with one:
 * no interface after the '%', none of that name, or any scope (a name or
 * an index) after an address whose scope the kernel would ignore (::1%1):
 * WHY, or NULL when the scope is not the problem (or HOST has none). */
const char *pe_net_scope_refused(const char *host, char why[PE_NET_ERRLEN]);

/* HOST:PORT's addresses, for pe_net_connect_list (free them with
 * freeaddrinfo): 0, or -EINVAL with ERR saying why. */
int pe_net_lookup(const char *host, const char *port, struct addrinfo **list,
                  char err[PE_NET_ERRLEN]);

/* The same, of FAMILY only (AF_INET, AF_INET6 or AF_UNSPEC for any). */
int pe_net_lookup_family(const char *host, const char *port, int family, struct addrinfo **list,
                         char err[PE_NET_ERRLEN]);

/* SA's address alone, numeric ("127.0.0.2", "::1"), in OUT, for a message:
 * control characters in an IPv6 scope's interface name as \xNN
 * (pe_parse_shown); "?" if it cannot be shown. Returns OUT. */
const char *pe_net_format_host(const struct sockaddr *sa, socklen_t len, char out[NI_MAXHOST]);

/* What to add to the reason a bind(2) (BINDING nonzero) or connect(2) on
 * SA failed with RC (a negative errno): " (not an address of this host)"
 * for a bind's EADDRNOTAVAIL (of that interface, for a link-local address
 * with one), and that IPv6 is turned off where net.ipv6.conf.*.disable_ipv6
 * says so (lo's for ::1); for a link-local IPv6 address without its interface
 * (fe80::1, not fe80::1%eth0), which the kernel refuses as EINVAL, that it
 * needs one; and for one whose index names no interface (fe80::1%99:
 * ENODEV, or ENETUNREACH from a connect), that none has it. "" when there
 * is nothing to add. */
const char *pe_net_address_hint(const struct sockaddr *sa, int rc, int binding);

/* What to add to the reason a connect(2) from SOURCE to SA failed with RC
 * (a negative errno): that a loopback source (127.0.0.1, ::ffff:127.0.0.1,
 * ::1) reaches only this host, for the EINVAL Linux gives when it is
 * routed out of an interface, whose errno text ("Invalid argument") names
 * neither address; not when SA's route refuses any source (a blackhole).
 * "" when there is nothing to add. Linux gives it for IPv4 only: a
 * connect from ::1 is not refused, and times out. It may change errno. */
const char *pe_net_source_hint(const struct sockaddr *source, const struct sockaddr *sa, int rc);

/* After a connect(2) to SA (from SOURCE, unless it is NULL) failed with
 * EADDRNOTAVAIL: 1 when the local ports are what ran out, 0 when no
 * address of this host reaches SA (none configured, or one removed since),
 * which the errno does not tell apart; a negative errno when the check
 * itself failed (EMFILE: no descriptor for it), which tells neither. */
int pe_net_ports_ran_out(const struct sockaddr *sa, socklen_t len, const struct sockaddr *source,
                         socklen_t source_len);

/* A socket of TYPE (SOCK_STREAM or SOCK_DGRAM, with SOCK_* flags) for
 * SA's family, to connect to or bind SA: for an IPv4-mapped address
 * (::ffff:127.0.0.1), dual-stack whatever net.ipv6.bindv6only says. The
 * descriptor or a negative errno. */
int pe_net_socket(const struct sockaddr *sa, int type);

/* Bind FD, before its connect(2), to the source address SA, leaving the
 * port to the connect. 0 or a negative errno. */
int pe_net_bind_source(int fd, const struct sockaddr *sa, socklen_t len);

/* Connect to the addresses of LIST in turn, as pe_net_connect_timeout
 * does; give up at once with -ECANCELED when CANCEL_FD (if >= 0: a
 * signalfd, say) becomes readable. Kept apart from the lookup, which
 * nothing can interrupt but a signal's default action. */
int pe_net_connect_list(const struct addrinfo *list, unsigned long timeout_ms, int cancel_fd,
                        char err[PE_NET_ERRLEN]);
/* The same from SOURCE (bound with pe_net_bind_source), unless it is NULL;
 * and, unless ANSWERED is NULL, with the address of LIST that answered
 * (connected, or reset at once) in *ANSWERED. */
int pe_net_connect_list_from(const struct addrinfo *list, const struct sockaddr *source,
                             socklen_t source_len, unsigned long timeout_ms, int cancel_fd,
                             const struct addrinfo **answered, char err[PE_NET_ERRLEN]);

/* Resolve HOST:PORT to its first address (for clients that connect many
 * times). 0 or a negative errno (-EINVAL for a resolver failure, with ERR). */
int pe_net_resolve(const char *host, const char *port, struct sockaddr_storage *addr,
                   socklen_t *len, char err[PE_NET_ERRLEN]);

/* "1.2.3.4:80" or "[::1]:80", for a message: control characters in an
 * IPv6 scope's interface name as \xNN (pe_parse_shown). */
void pe_net_format(const struct sockaddr *sa, socklen_t len, char out[PE_NET_ADDRLEN]);

/* The same with the interface's name as it is: for output that escapes
 * on its own (JSON), where \xNN would be taken for the name. */
void pe_net_format_exact(const struct sockaddr *sa, socklen_t len, char out[PE_NET_ADDRLEN]);

/* The peer of connected socket FD, formatted as pe_net_format does, or
 * "(unknown peer: REASON)". Take it early: after a reset there is none. */
void pe_net_peer_name(int fd, char out[PE_NET_ADDRLEN]);

/* SO_RCVTIMEO to RECV_US and SO_SNDTIMEO to SEND_US microseconds (0 = none). */
int pe_net_set_timeouts_us(int fd, unsigned long long recv_us, unsigned long long send_us);

/* Whether ERR, from recv(2) or send(2) on a connection made, says the
 * system gave it up: the peer acknowledged nothing through all of the
 * retransmissions (some 15 minutes by default). ETIMEDOUT, or the
 * network's last word on the way there (an ICMP "host unreachable" from a
 * router, kept as a soft error until then, and reported in its place). */
bool pe_net_gave_up(int err);

/* TCP keepalive on FD: probes after IDLE_S seconds of silence, every
 * INTERVAL_S, the connection given up (ETIMEDOUT) after COUNT unanswered;
 * where the system has no per-socket settings, its own. 0 or -errno. */
int pe_net_set_keepalive(int fd, int idle_s, int interval_s, int count);

/* What every echoed connection needs: TCP_NODELAY, and SO_OOBINLINE so that
 * a byte sent as urgent data stays in the stream to be echoed. 0 or -errno. */
int pe_net_set_echo_options(int fd);

/* Of listening TCP socket FD: how many connections wait in its accept
 * queue (*WAITING) and how many it may hold, its backlog in effect
 * (*BACKLOG); either may be NULL. Linux gives them as TCP_INFO's
 * tcpi_unacked and tcpi_sacked. 0, or -errno (-ENOSYS elsewhere). */
int pe_net_listen_queue(int fd, unsigned *waiting, unsigned *backlog);

/* Turn O_NONBLOCK on FD on (NONBLOCKING != 0) or off, keeping its other
 * status flags. 0 or -errno. */
int pe_net_set_nonblocking(int fd, int nonblocking);

#endif /* POOLECHO_NET_H */
