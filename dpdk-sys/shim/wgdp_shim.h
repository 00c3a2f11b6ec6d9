/*
 * wgdp_shim.h - out-of-line wrappers for the DPDK `static inline` functions
 * that wgdp calls. Bindgen cannot bind inline functions, so each one gets a
 * `wgdp_` twin here, compiled by build.rs with the cflags pkg-config gives.
 * Keep this list to what the Rust side uses.
 */
#ifndef WGDP_SHIM_H
#define WGDP_SHIM_H

#include <stdint.h>
#include <stdio.h>

#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_cycles.h>
#include <rte_log.h>
#include <rte_dev.h>
#include <rte_bus.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ethdev.h>
#include <rte_flow.h>
#include <rte_ring.h>
#include <rte_eth_ring.h>
#include <rte_telemetry.h>
#include <rte_crypto.h>
#include <rte_cryptodev.h>
#include <rte_ip_frag.h>

/* rte_errno is a per-lcore (thread-local) variable behind a macro. */
int wgdp_rte_errno(void);

unsigned wgdp_lcore_id(void);
uint64_t wgdp_rdtsc(void);

/* Redirect DPDK's log into a memory buffer (used around rte_eal_init so
 * that a failed init can return DPDK's own messages). Returns 0 on success. */
int wgdp_log_capture_begin(void);
/* Stop capturing, restore the default log stream, and return the captured
 * text (malloc'd, NUL-terminated, caller frees with wgdp_free). */
char *wgdp_log_capture_end(void);
void wgdp_free(void *p);

/* Give every real-time signal that still has its default action a handler
 * that does nothing, so that net_tap finds none free for its RX trigger
 * and polls instead ("No Rx trigger signal available"): the trigger queues
 * one signal per received frame to the process, which a flood turns into
 * tens of thousands of signal deliveries a second on whichever thread the
 * kernel picks. Returns how many signals were claimed. */
int wgdp_claim_rt_signals(void);

struct rte_mbuf *wgdp_pktmbuf_alloc(struct rte_mempool *mp);
int wgdp_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs,
                            unsigned count);
void wgdp_pktmbuf_free(struct rte_mbuf *m);
/* Copies a chained packet into its first segment (which must have the
 * tailroom); 0 on success, -1 when it does not fit. */
int wgdp_pktmbuf_linearize(struct rte_mbuf *m);

unsigned wgdp_mempool_avail_count(const struct rte_mempool *mp);
unsigned wgdp_mempool_in_use_count(const struct rte_mempool *mp);

uint16_t wgdp_eth_rx_burst(uint16_t port_id, uint16_t queue_id,
                           struct rte_mbuf **rx_pkts, uint16_t nb_pkts);
uint16_t wgdp_eth_tx_burst(uint16_t port_id, uint16_t queue_id,
                           struct rte_mbuf **tx_pkts, uint16_t nb_pkts);

unsigned wgdp_ring_enqueue_burst(struct rte_ring *r, void *const *objs,
                                 unsigned n, unsigned *free_space);
unsigned wgdp_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned n,
                                 unsigned *available);
unsigned wgdp_ring_enqueue_bulk(struct rte_ring *r, void *const *objs,
                                unsigned n, unsigned *free_space);
unsigned wgdp_ring_dequeue_bulk(struct rte_ring *r, void **objs, unsigned n,
                                unsigned *available);
unsigned wgdp_ring_count(const struct rte_ring *r);

struct rte_crypto_op *wgdp_crypto_op_alloc(struct rte_mempool *mp);
void wgdp_crypto_op_free(struct rte_crypto_op *op);
int wgdp_crypto_op_attach_sym_session(struct rte_crypto_op *op, void *sess);
uint16_t wgdp_cryptodev_enqueue_burst(uint8_t dev_id, uint16_t qp_id,
                                      struct rte_crypto_op **ops, uint16_t n);
uint16_t wgdp_cryptodev_dequeue_burst(uint8_t dev_id, uint16_t qp_id,
                                      struct rte_crypto_op **ops, uint16_t n);
uint64_t wgdp_mempool_virt2iova(const void *elt);

/* Flag values DPDK defines with function-like macros (RTE_BIT64), which
 * bindgen cannot evaluate: exported as constants with a wgdp_ prefix. */
extern const uint64_t wgdp_eth_rss_ipv4;
extern const uint64_t wgdp_eth_rss_nonfrag_ipv4_udp;
extern const uint64_t wgdp_eth_rss_nonfrag_ipv4_tcp;
extern const uint64_t wgdp_eth_rss_ipv6;
extern const uint64_t wgdp_eth_rss_nonfrag_ipv6_udp;
extern const uint64_t wgdp_eth_rss_nonfrag_ipv6_tcp;
extern const uint64_t wgdp_eth_rss_ip;
extern const uint64_t wgdp_eth_rss_udp;
extern const uint64_t wgdp_eth_rx_offload_rss_hash;
extern const uint64_t wgdp_eth_tx_offload_ipv4_cksum;
extern const uint64_t wgdp_eth_tx_offload_udp_cksum;

#endif
