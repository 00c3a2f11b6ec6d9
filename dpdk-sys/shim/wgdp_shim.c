/* wgdp_shim.c - see wgdp_shim.h. Every function is a one-line forward. */
#include "wgdp_shim.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

int wgdp_rte_errno(void) { return rte_errno; }
unsigned wgdp_lcore_id(void) { return rte_lcore_id(); }
uint64_t wgdp_rdtsc(void) { return rte_rdtsc(); }

static FILE *capture_stream;
static char *capture_buf;
static size_t capture_len;

int wgdp_log_capture_begin(void)
{
	if (capture_stream != NULL)
		return -1;
	capture_stream = open_memstream(&capture_buf, &capture_len);
	if (capture_stream == NULL)
		return -1;
	return rte_openlog_stream(capture_stream);
}

char *wgdp_log_capture_end(void)
{
	char *text;

	if (capture_stream == NULL)
		return NULL;
	rte_openlog_stream(NULL);
	fclose(capture_stream);
	capture_stream = NULL;
	text = capture_buf;
	capture_buf = NULL;
	capture_len = 0;
	return text;
}

void wgdp_free(void *p) { free(p); }

static void ignore_signal(int sig) { (void)sig; }

int wgdp_claim_rt_signals(void)
{
	int sig, claimed = 0;

	for (sig = SIGRTMIN; sig <= SIGRTMAX; sig++) {
		struct sigaction old, sa;

		if (sigaction(sig, NULL, &old) != 0 || old.sa_handler != SIG_DFL)
			continue;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = ignore_signal;
		sa.sa_flags = SA_RESTART;
		sigemptyset(&sa.sa_mask);
		if (sigaction(sig, &sa, NULL) == 0)
			claimed++;
	}
	return claimed;
}

struct rte_mbuf *wgdp_pktmbuf_alloc(struct rte_mempool *mp)
{
	return rte_pktmbuf_alloc(mp);
}

int wgdp_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs,
			    unsigned count)
{
	return rte_pktmbuf_alloc_bulk(mp, mbufs, count);
}

void wgdp_pktmbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }
int wgdp_pktmbuf_linearize(struct rte_mbuf *m) { return rte_pktmbuf_linearize(m); }

unsigned wgdp_mempool_avail_count(const struct rte_mempool *mp)
{
	return rte_mempool_avail_count(mp);
}

unsigned wgdp_mempool_in_use_count(const struct rte_mempool *mp)
{
	return rte_mempool_in_use_count(mp);
}

uint16_t wgdp_eth_rx_burst(uint16_t port_id, uint16_t queue_id,
			   struct rte_mbuf **rx_pkts, uint16_t nb_pkts)
{
	return rte_eth_rx_burst(port_id, queue_id, rx_pkts, nb_pkts);
}

uint16_t wgdp_eth_tx_burst(uint16_t port_id, uint16_t queue_id,
			   struct rte_mbuf **tx_pkts, uint16_t nb_pkts)
{
	return rte_eth_tx_burst(port_id, queue_id, tx_pkts, nb_pkts);
}

unsigned wgdp_ring_enqueue_burst(struct rte_ring *r, void *const *objs,
				 unsigned n, unsigned *free_space)
{
	return rte_ring_enqueue_burst(r, objs, n, free_space);
}

unsigned wgdp_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned n,
				 unsigned *available)
{
	return rte_ring_dequeue_burst(r, objs, n, available);
}

unsigned wgdp_ring_enqueue_bulk(struct rte_ring *r, void *const *objs,
				unsigned n, unsigned *free_space)
{
	return rte_ring_enqueue_bulk(r, objs, n, free_space);
}

unsigned wgdp_ring_dequeue_bulk(struct rte_ring *r, void **objs, unsigned n,
				unsigned *available)
{
	return rte_ring_dequeue_bulk(r, objs, n, available);
}

unsigned wgdp_ring_count(const struct rte_ring *r) { return rte_ring_count(r); }

struct rte_crypto_op *wgdp_crypto_op_alloc(struct rte_mempool *mp)
{
	return rte_crypto_op_alloc(mp, RTE_CRYPTO_OP_TYPE_SYMMETRIC);
}

void wgdp_crypto_op_free(struct rte_crypto_op *op) { rte_crypto_op_free(op); }

int wgdp_crypto_op_attach_sym_session(struct rte_crypto_op *op, void *sess)
{
	return rte_crypto_op_attach_sym_session(op, sess);
}

uint16_t wgdp_cryptodev_enqueue_burst(uint8_t dev_id, uint16_t qp_id,
				      struct rte_crypto_op **ops, uint16_t n)
{
	return rte_cryptodev_enqueue_burst(dev_id, qp_id, ops, n);
}

uint16_t wgdp_cryptodev_dequeue_burst(uint8_t dev_id, uint16_t qp_id,
				      struct rte_crypto_op **ops, uint16_t n)
{
	return rte_cryptodev_dequeue_burst(dev_id, qp_id, ops, n);
}

uint64_t wgdp_mempool_virt2iova(const void *elt)
{
	return rte_mempool_virt2iova(elt);
}

const uint64_t wgdp_eth_rss_ipv4 = RTE_ETH_RSS_IPV4;
const uint64_t wgdp_eth_rss_nonfrag_ipv4_udp = RTE_ETH_RSS_NONFRAG_IPV4_UDP;
const uint64_t wgdp_eth_rss_nonfrag_ipv4_tcp = RTE_ETH_RSS_NONFRAG_IPV4_TCP;
const uint64_t wgdp_eth_rss_ipv6 = RTE_ETH_RSS_IPV6;
const uint64_t wgdp_eth_rss_nonfrag_ipv6_udp = RTE_ETH_RSS_NONFRAG_IPV6_UDP;
const uint64_t wgdp_eth_rss_nonfrag_ipv6_tcp = RTE_ETH_RSS_NONFRAG_IPV6_TCP;
const uint64_t wgdp_eth_rss_ip = RTE_ETH_RSS_IP;
const uint64_t wgdp_eth_rss_udp = RTE_ETH_RSS_UDP;
const uint64_t wgdp_eth_rx_offload_rss_hash = RTE_ETH_RX_OFFLOAD_RSS_HASH;
const uint64_t wgdp_eth_tx_offload_ipv4_cksum = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
const uint64_t wgdp_eth_tx_offload_udp_cksum = RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
