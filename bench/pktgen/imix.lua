-- IMIX through wgdp with pktgen-dpdk at a fixed rate: the 7:4:1 mix of
-- 64/570/1518-byte frames to every tunnel (DIR/imix.pcap from
-- bench/gen_tables.py), sent from port 0 (facing the DUT's plaintext port)
-- and counted on port 1 (behind the peer box), once per second.
--
--   pktgen -l 0-4 -n 4 -a TG0 -a TG1 -- -P -m "[1:2].0,[3:4].1" \
--       -s 0:DIR/imix.pcap -f bench/pktgen/imix.lua
--
-- Environment: WGDP_BENCH_ENV (DIR/pktgen-env.lua, required), IMIX_RATE
-- (percent of line rate, default 100), IMIX_SECONDS (default 30).
-- Prints one line per second and a summary: Mpps, Gbit/s of frames
-- received, and the loss.

package.path = package.path .. ";?.lua;test/?.lua;app/?.lua;../?.lua"
require "Pktgen"

local env_path = os.getenv("WGDP_BENCH_ENV")
if env_path == nil or env_path == "" then
    error("set WGDP_BENCH_ENV to the pktgen-env.lua that bench/gen_tables.py wrote")
end
local env = dofile(env_path)
local rate = tonumber(os.getenv("IMIX_RATE") or "100")
local seconds = tonumber(os.getenv("IMIX_SECONDS") or "30")
local tx, rx = env.tx_port, env.rx_port

local function stats(port)
    return pktgen.portStats(port, "port")[tonumber(port)]
end

pktgen.set_range(tx, "off")
pktgen.pcap(tx, "on")
pktgen.set(tx, "rate", rate)
pktgen.clr()
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
local loss = 0
if t.opackets > 0 then loss = (t.opackets - r.ipackets) * 100.0 / t.opackets end
printf("imix %d tunnels, %d%% of line rate, %ds: tx %d rx %d (%.3f Mpps, %.3f Gbit/s), loss %.4f%%\n",
    env.tunnels, rate, seconds, t.opackets, r.ipackets, r.ipackets / seconds / 1e6,
    r.ibytes * 8 / seconds / 1e9, loss)
