/*
 * The few ipsec-mb calls wgdp makes, as plain functions: ipsec-mb's API is
 * macros over function pointers inside IMB_MGR, which Rust cannot call
 * without mirroring the whole struct. Nothing but pointers and integers
 * crosses this boundary, so no struct layout has to match on the Rust side.
 */
#include <stdint.h>
#include <string.h>
#include <intel-ipsec-mb.h>

_Static_assert(IMB_VERSION_NUM >= IMB_VERSION(1, 3, 0), "ipsec-mb 1.3 or newer");
_Static_assert(sizeof(IMB_ARCH) == sizeof(int), "IMB_ARCH is an int-sized enum");

/* Values the Rust side relies on. */
const int wgdp_imb_arch_avx512 = IMB_ARCH_AVX512;

/* A manager initialised for the best code path this CPU has; *arch says
 * which. NULL when allocation fails. */
IMB_MGR *wgdp_imb_new(int *arch)
{
        IMB_MGR *m = alloc_mb_mgr(0);
        IMB_ARCH a = IMB_ARCH_NONE;

        if (m == NULL)
                return NULL;
        init_mb_mgr_auto(m, &a);
        if (imb_get_errno(m) != 0) {
                free_mb_mgr(m);
                return NULL;
        }
        *arch = (int)a;
        return m;
}

void wgdp_imb_free(IMB_MGR *m)
{
        free_mb_mgr(m);
}

/*
 * ChaCha20-Poly1305 (RFC 8439) in place over buf[0..len), with
 * aad[0..aad_len) as associated data (WireGuard's data messages have none): encrypts
 * (encrypt != 0) or decrypts, and writes the 16-byte tag over the
 * ciphertext to tag_out. Decryption does not compare tags: the caller
 * does. Returns 0, or -1 when the job did not complete.
 */
int wgdp_imb_chacha20_poly1305(IMB_MGR *m, const uint8_t key[32], const uint8_t iv[12],
                               const uint8_t *aad, uint64_t aad_len, uint8_t *buf, uint64_t len,
                               uint8_t tag_out[16], int encrypt)
{
        static const uint8_t empty[1];
        IMB_JOB *job = IMB_GET_NEXT_JOB(m);

        job->cipher_mode = IMB_CIPHER_CHACHA20_POLY1305;
        job->hash_alg = IMB_AUTH_CHACHA20_POLY1305;
        job->cipher_direction = encrypt ? IMB_DIR_ENCRYPT : IMB_DIR_DECRYPT;
        job->chain_order = encrypt ? IMB_ORDER_CIPHER_HASH : IMB_ORDER_HASH_CIPHER;
        job->enc_keys = key;
        job->dec_keys = key;
        job->key_len_in_bytes = 32;
        /* A keepalive is empty: ipsec-mb wants a buffer pointer anyway. */
        job->src = len ? buf : empty;
        job->dst = len ? buf : (uint8_t *)tag_out;
        job->cipher_start_src_offset_in_bytes = 0;
        job->msg_len_to_cipher_in_bytes = len;
        job->hash_start_src_offset_in_bytes = 0;
        job->msg_len_to_hash_in_bytes = len;
        job->iv = iv;
        job->iv_len_in_bytes = 12;
        job->u.CHACHA20_POLY1305.aad = aad_len ? aad : empty;
        job->u.CHACHA20_POLY1305.aad_len_in_bytes = aad_len;
        job->auth_tag_output = tag_out;
        job->auth_tag_output_len_in_bytes = 16;

        /* Every field above is fixed but the lengths and pointers, which
         * any value makes valid: skip the submit path's parameter checks
         * (about 7 ns a job at 64 bytes, 4 % of the cipher). */
        job = IMB_SUBMIT_JOB_NOCHECK(m);
        /* ChaCha20-Poly1305 jobs complete on submission; flush otherwise. */
        while (job == NULL)
                job = IMB_FLUSH_JOB(m);
        return job->status == IMB_STATUS_COMPLETED ? 0 : -1;
}
