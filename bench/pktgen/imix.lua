-- IMIX through wgdp with pktgen-dpdk at a fixed rate: the 7:4:1 mix of
-- 64/570/1518-byte frames to every tunnel (DIR/imix.pcap from
-- bench/gen_tables.py), sent from port 0 (facing the DUT's plaintext port)
-- and counted on port 1 (behind the peer box), once per second.
--
--   pktgen -l 0-4 -n 4 -a TG0 -a TG1 -- -P -m "[1:2].0,[3:4].1" \
--       -s 0:DIR/imix.pcap -f bench/pktgen/imix.lua
--
-- Environment: WGDP_BENCH_ENV (DIR/pktgen-env.lua, required), IMIX_RATE
-- (percent of line rate, default 100), IMIX_SECONDS (default 30),
-- IMIX_COUNT (send at most this many frames: a pcap of sealed data
-- messages, which must not be replayed; default: no bound), IMIX_LOG (also
-- append the summary to this file), RFC2544_QUIT=1 (quit at the end, as
-- rfc2544.lua). rx_ip and tx_ip of the environment file, when set, are the
-- ports' addresses, for which they answer ARP.
-- Prints one line per second and a summary: Mpps, Gbit/s of frames
-- received, and the loss (ARP frames on the receiving port not counted).

package.path = package.path .. ";?.lua;test/?.lua;app/?.lua;../?.lua"
require "Pktgen"

local env_path = os.getenv("WGDP_BENCH_ENV")
if env_path == nil or env_path == "" then
    error("set WGDP_BENCH_ENV to the pktgen-env.lua that bench/gen_tables.py wrote")
end
local env = dofile(env_path)
local rate = tonumber(os.getenv("IMIX_RATE") or "100")
local seconds = tonumber(os.getenv("IMIX_SECONDS") or "30")
local count = tonumber(os.getenv("IMIX_COUNT") or "0")
local log_path = os.getenv("IMIX_LOG")
local tx, rx = env.tx_port, env.rx_port

local function stats(port)
    return pktgen.portStats(port, "port")[tonumber(port)]
end

local function main()
    for _, p in ipairs({ { rx, env.rx_ip }, { tx, env.tx_ip } }) do
        if p[2] ~= nil then
            pktgen.set_ipaddr(p[1], "src", p[2])
            pktgen.process(p[1], "on")
        end
    end
    pktgen.set_range(tx, "off")
    pktgen.pcap(tx, "on")
    pktgen.set(tx, "rate", rate)
    pktgen.set(tx, "count", count)
    pktgen.clr() -- zeroes the ARP count too
    pktgen.delay(500)
    pktgen.start(tx)
    local last_rx, last_bytes = 0, 0
    for s = 1, seconds do
        pktgen.delay(1000)
        local r = stats(rx)
        printf("imix t=%ds rx %.3f Mpps %.3f Gbit/s\n", s,
            (r.ipackets - last_rx) / 1e6, (r.ibytes - last_bytes) * 8 / 1e9)
        last_rx, last_bytes = r.ipackets, r.ibytes
    end
    pktgen.stop(tx)
    pktgen.delay(2000)
    local t, r = stats(tx), stats(rx)
    -- What arrived less the ARP frames port rx saw (the DUT resolving it).
    local got = r.ipackets - pktgen.pktStats(rx)[tonumber(rx)].arp_pkts
    -- Sent less the TX port's ARP replies (one per request it received).
    local sent = t.opackets - (env.tx_ip and pktgen.pktStats(tx)[tonumber(tx)].arp_pkts or 0)
    local loss = 0
    if sent > 0 then loss = (sent - got) * 100.0 / sent end
    local summary = string.format(
        "imix %d tunnels, %g%% of line rate, %ds: tx %d rx %d (%.3f Mpps, %.3f Gbit/s), loss %.4f%%\n",
        env.tunnels, rate, seconds, sent, got, got / seconds / 1e6,
        r.ibytes * 8 / seconds / 1e9, loss)
    printf("%s", summary)
    if log_path ~= nil and log_path ~= "" then
        local f = assert(io.open(log_path, "a"))
        f:write(summary)
        f:close()
    end
end

local ok, err = pcall(main)
if not ok then
    printf("imix error: %s\n", tostring(err))
    if log_path ~= nil and log_path ~= "" then
        local f = assert(io.open(log_path, "a"))
        f:write("imix error: " .. tostring(err) .. "\n")
        f:close()
    end
end
if os.getenv("RFC2544_QUIT") == "1" then pktgen.quit() end
