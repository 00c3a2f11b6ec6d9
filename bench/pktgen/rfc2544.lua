-- RFC 2544 throughput for wgdp with pktgen-dpdk: for each frame size, a
-- binary search for the highest rate whose loss stays within a threshold,
-- with traffic spread over the allowed-IP prefixes of every tunnel.
--
--   pktgen -l 0-4 -n 4 -a TG0 -a TG1 -- -P -m "[1:2].0,[3:4].1" \
--       -s 0:DIR/imix.pcap -f bench/pktgen/rfc2544.lua
--
-- Environment (read with os.getenv):
--   WGDP_BENCH_ENV   DIR/pktgen-env.lua from bench/gen_tables.py (required)
--   RFC2544_SIZES    comma-separated frame sizes and/or "imix" (default 64,1518,imix)
--   RFC2544_LOSS     accepted loss in percent, comma-separated: one search per
--                    value (default 0.0: RFC 2544's zero loss)
--   RFC2544_TRIAL_MS trial duration (default 10000; RFC 2544 asks for 60000 to confirm)
--   RFC2544_SETTLE_MS wait after each trial before reading counters (default 2000)
--   RFC2544_MAX      the search's upper bound and first trial, percent of line
--                    rate (default 100; a memif port reports 100 Gbit/s)
--   RFC2544_RES      stop when the search interval is below this many percent of
--                    line rate (default 0.5)
--   RFC2544_WARMUP_S before the searches, send at the lowest rate (0.01 %) for
--                    up to this many seconds until port 1 receives (the
--                    tunnels' handshakes); 0: no warm-up (default 0)
--   RFC2544_OUT      CSV results (default rfc2544-wgdp.csv)
--   RFC2544_LOG      also append the console's result lines to this file
--                    (pktgen's screen surrounds them with escape codes)
--   RFC2544_TX_BUDGET the most frames the TX port may send in the whole run
--                    (warm-up and every trial): the distinct frames of a
--                    pcap that must not be replayed (sealed data messages:
--                    the DUT drops a repeated counter). Each trial then sends
--                    at most RFC2544_TRIAL_COUNT frames (pktgen's `count`)
--                    and ends when they are out; the script stops with an
--                    error rather than send past the budget. Unset: no bound.
--   RFC2544_TRIAL_COUNT frames per trial under RFC2544_TX_BUDGET
--   RFC2544_RX_OTHER_CMD a shell command printing one number: the frames the
--                    DUT sent towards the RX port on its own (handshake
--                    initiations, keepalives), run before and after each
--                    trial; the difference is taken off the RX count, as are
--                    the ARP frames port RX counted
--   RFC2544_DEADLINE unix time after which no trial may still be running (the
--                    DUT's sessions expire then: WireGuard's
--                    REJECT_AFTER_TIME after the emulated peers' handshakes).
--                    A trial that could not end before it is not started:
--                    the search ends there with the best rate found so far,
--                    marked cut. Unset: no bound.
-- Port 0 faces the DUT's plaintext port, port 1 the peer box (bench/README.md).
-- Every trial also prints one "trial" line; the CSV holds the final result
-- per size and loss limit: size,loss_limit,rate_percent,tx_pps,rx_pps,loss_percent,cut
-- (cut: 1 when RFC2544_DEADLINE ended the search before its resolution).
-- The environment file may also set rx_ip and tx_ip ("A.B.C.D/len"): the
-- port takes that address and answers ARP for it (the DUT resolving its
-- next hop), and pcap_only = true: the TX port sends its pcap (-s) at every
-- size (the size is then only the results' label).

package.path = package.path .. ";?.lua;test/?.lua;app/?.lua;../?.lua"
require "Pktgen"

local function getenv(name, default)
    local v = os.getenv(name)
    if v == nil or v == "" then return default end
    return v
end

local env_path = getenv("WGDP_BENCH_ENV", nil)
if env_path == nil then
    error("set WGDP_BENCH_ENV to the pktgen-env.lua that bench/gen_tables.py wrote")
end
local env = dofile(env_path)
local env_dir = env_path:match("(.*/)") or "./"

local loss_limits = {}
for l in string.gmatch(getenv("RFC2544_LOSS", "0.0"), "[^,]+") do
    loss_limits[#loss_limits + 1] = tonumber(l)
end
local trial_ms = tonumber(getenv("RFC2544_TRIAL_MS", "10000"))
local settle_ms = tonumber(getenv("RFC2544_SETTLE_MS", "2000"))
local max_rate = tonumber(getenv("RFC2544_MAX", "100"))
local resolution = tonumber(getenv("RFC2544_RES", "0.5"))
local warmup_s = tonumber(getenv("RFC2544_WARMUP_S", "0"))
local out_path = getenv("RFC2544_OUT", "rfc2544-wgdp.csv")
local log_path = getenv("RFC2544_LOG", nil)
local log_file = log_path and assert(io.open(log_path, "a"))
local tx_budget = tonumber(getenv("RFC2544_TX_BUDGET", "0"))
local trial_count = tonumber(getenv("RFC2544_TRIAL_COUNT", "0"))
local rx_other_cmd = getenv("RFC2544_RX_OTHER_CMD", nil)
local deadline = tonumber(getenv("RFC2544_DEADLINE", "0"))
local tx_used = 0 -- frames sent so far, against RFC2544_TX_BUDGET

-- A result line, on the console and in RFC2544_LOG.
local function say(fmt, ...)
    local line = string.format(fmt, ...)
    printf("%s", line)
    if log_file then
        log_file:write(line)
        log_file:flush()
    end
end

local sizes = {}
for s in string.gmatch(getenv("RFC2544_SIZES", "64,1518,imix"), "[^,]+") do
    sizes[#sizes + 1] = s
end

local tx, rx = env.tx_port, env.rx_port

-- Plaintext UDP from TG0's side to tunnel after tunnel (range mode).
local function setup_range()
    pktgen.set_mac(tx, "dst", env.dut_plaintext_mac)
    pktgen.set_proto(tx, "udp")
    pktgen.set_ipaddr(tx, "src", env.src_ip)
    pktgen.range.dst_mac(tx, "start", env.dut_plaintext_mac)
    pktgen.range.dst_ip(tx, "start", env.dst_min)
    pktgen.range.dst_ip(tx, "min", env.dst_min)
    pktgen.range.dst_ip(tx, "max", env.dst_max)
    pktgen.range.dst_ip(tx, "inc", env.dst_inc)
    pktgen.range.src_ip(tx, "start", env.src_ip:match("^[^/]+"))
    pktgen.range.src_ip(tx, "inc", "0.0.0.0")
    pktgen.range.dst_port(tx, "start", 5201)
    pktgen.range.dst_port(tx, "inc", 0)
    pktgen.range.src_port(tx, "start", 1024)
    pktgen.range.src_port(tx, "inc", 1)
    pktgen.range.src_port(tx, "min", 1024)
    pktgen.range.src_port(tx, "max", 5119)
    pktgen.set(tx, "count", 0)
    if env.rx_ip ~= nil then
        pktgen.set_ipaddr(rx, "src", env.rx_ip)
        pktgen.process(rx, "on")
    end
    if env.tx_ip ~= nil then
        pktgen.set_ipaddr(tx, "src", env.tx_ip)
        pktgen.process(tx, "on")
    end
end

-- A frame size ("64", "1518", ...) in range mode, or IMIX from the pcap
-- (pktgen -s 0:DIR/imix.pcap, same tunnels, 7:4:1 of 64/570/1518).
local function select_size(size)
    if size == "imix" or env.pcap_only then
        pktgen.set_range(tx, "off")
        pktgen.pcap(tx, "on")
    else
        local n = tonumber(size)
        pktgen.pcap(tx, "off")
        pktgen.range.pkt_size(tx, "start", n)
        pktgen.range.pkt_size(tx, "min", n)
        pktgen.range.pkt_size(tx, "max", n)
        pktgen.range.pkt_size(tx, "inc", 0)
        pktgen.set_range(tx, "on")
    end
end

local function port_stats(port)
    return pktgen.portStats(port, "port")[tonumber(port)]
end

local function arp_frames(port)
    return pktgen.pktStats(port)[tonumber(port)].arp_pkts
end

-- RFC2544_RX_OTHER_CMD's number (0 without one).
local function rx_other()
    if rx_other_cmd == nil then return 0 end
    local h = assert(io.popen(rx_other_cmd))
    local n = h:read("*n")
    h:close()
    if n == nil then error("RFC2544_RX_OTHER_CMD printed no number") end
    return n
end

-- Under a TX budget: sets pktgen's count for the next send (at most
-- `want` frames) and returns it; without one, sends until stopped.
local function arm_count(want)
    if tx_budget <= 0 then
        pktgen.set(tx, "count", 0)
        return nil
    end
    local n = math.min(want, tx_budget - tx_used)
    if n <= 0 then
        error(string.format("TX budget of %d frames spent (the pcap's distinct frames)", tx_budget))
    end
    pktgen.set(tx, "count", n)
    return n
end

-- Sends for `ms` or, with a count, until the count is out; returns the
-- milliseconds sent (20 ms resolution with a count).
local function send_for(ms, count)
    if count == nil then
        pktgen.delay(ms)
        return ms
    end
    local t = 0
    while t < ms do
        pktgen.delay(20)
        t = t + 20
        if port_stats(tx).opackets >= count then break end
    end
    return t
end

-- One trial at `rate`: loss, TX and RX packets per second, or nil when the
-- generator sent nothing (its lcore did not run: nothing was measured).
local function attempt(size, rate)
    -- RFC2544_RX_OTHER_CMD is read before the counters are cleared and
    -- after they are read, so that what the DUT sends on its own around
    -- the edges is taken off too: the loss is never understated.
    local other0 = rx_other()
    pktgen.clr()
    pktgen.set(tx, "rate", rate)
    local count = arm_count(trial_count)
    pktgen.delay(500)
    pktgen.start(tx)
    local ms = send_for(trial_ms, count)
    pktgen.stop(tx)
    pktgen.delay(settle_ms) -- let queued packets drain through the DUT
    local stx = port_stats(tx)
    local srx = port_stats(rx)
    -- ARP frames since the clear (pktgen.clr() zeroes them too).
    local other = rx_other() - other0 + arp_frames(rx)
    -- What the TX port sent less its ARP replies (one per request it
    -- received, when it has an address).
    local sent = stx.opackets - (env.tx_ip and arp_frames(tx) or 0)
    tx_used = tx_used + sent
    local got = srx.ipackets - other
    local secs = ms / 1000.0
    if sent == 0 then
        say("trial size=%s rate=%.3f%% tx=0: the generator sent nothing, not counted\n", size, rate)
        return nil
    end
    local loss = (sent - got) * 100.0 / sent
    if loss < 0 then loss = 0 end -- stray frames on the RX port
    -- Gbit/s of the frames received, as DPDK counts them (no FCS).
    say("trial size=%s rate=%.3f%% tx=%d rx=%d other=%d loss=%.4f%% secs=%.2f tx_pps=%.0f rx_pps=%.0f rx_mpps=%.3f rx_gbps=%.3f at=%d\n",
        size, rate, sent, got, other, loss, secs, sent / secs, got / secs, got / secs / 1e6,
        srx.ibytes * 8 / secs / 1e9, os.time())
    return loss, sent / secs, got / secs
end

-- A trial, repeated (three times at most) while the generator sent
-- nothing; three empty attempts count as 100 % loss.
local function trial(size, rate)
    for _ = 1, 3 do
        local loss, tx_pps, rx_pps = attempt(size, rate)
        if loss ~= nil then return loss, tx_pps, rx_pps end
    end
    return 100.0, 0, 0
end

-- Low-rate traffic until port 1 receives: the DUT's handshakes complete
-- (the first packets wait for them, or are dropped) before any trial counts.
local function warmup()
    pktgen.clr()
    pktgen.set(tx, "rate", 0.01)
    arm_count(64)
    pktgen.start(tx)
    local got = 0
    for _ = 1, warmup_s * 10 do
        pktgen.delay(100)
        got = port_stats(rx).ipackets - arp_frames(rx)
        if got > 0 then break end
    end
    pktgen.stop(tx)
    pktgen.delay(settle_ms)
    tx_used = tx_used + port_stats(tx).opackets
    say("warmup received=%d\n", got)
    if got == 0 then error("warm-up: nothing arrived on port " .. rx .. " in " .. warmup_s .. " s") end
end

-- Whether a trial started now could end after RFC2544_DEADLINE: its
-- send, settle and 0.5 s lead-in, and 2 s for the counters and commands.
local function past_deadline()
    return deadline > 0 and os.time() + (500 + trial_ms + settle_ms) / 1000.0 + 2 > deadline
end

-- The binary search; its result (nil when no rate met the limit) and
-- whether RFC2544_DEADLINE cut it short.
local function search(size, loss_limit)
    local lo, hi = 0.0, max_rate
    local best = nil
    local rate = max_rate
    while true do
        if past_deadline() then
            say("size %s loss<=%g%%: search cut at RFC2544_DEADLINE (between %.3f%% and %.3f%%)\n",
                size, loss_limit, lo, hi)
            return best, true
        end
        local loss, tx_pps, rx_pps = trial(size, rate)
        if loss <= loss_limit then
            lo = rate
            best = { rate = rate, tx_pps = tx_pps, rx_pps = rx_pps, loss = loss }
        else
            hi = rate
        end
        if hi - lo < resolution or rate == max_rate and loss <= loss_limit then break end
        rate = lo + (hi - lo) / 2
    end
    return best, false
end

local function main()
    local file = assert(io.open(out_path, "w"))
    file:write("# wgdp RFC 2544 throughput, " .. env.tunnels .. " tunnels, trials of "
        .. trial_ms .. " ms\n")
    file:write("size,loss_limit,rate_percent,tx_pps,rx_pps,loss_percent,cut\n")
    setup_range()
    if warmup_s > 0 then
        select_size(sizes[1])
        warmup()
    end
    for _, size in ipairs(sizes) do
        select_size(size)
        for _, loss_limit in ipairs(loss_limits) do
            local best, cut = search(size, loss_limit)
            if best == nil then
                say("size %s loss<=%g%%: no rate met the loss limit\n", size, loss_limit)
                file:write(string.format("%s,%g,0,0,0,100,%d\n", size, loss_limit, cut and 1 or 0))
            else
                say("size %s loss<=%g%%: %.3f%% of line rate, %.0f pps received, loss %.4f%%\n",
                    size, loss_limit, best.rate, best.rx_pps, best.loss)
                file:write(string.format("%s,%g,%.3f,%.0f,%.0f,%.4f,%d\n",
                    size, loss_limit, best.rate, best.tx_pps, best.rx_pps, best.loss, cut and 1 or 0))
            end
            file:flush()
        end
    end
    file:close()
    say("results in %s (tables from %s)\n", out_path, env_dir)
end

local ok, err = pcall(main)
if not ok then say("rfc2544 error: %s\n", tostring(err)) end
if getenv("RFC2544_QUIT", "0") == "1" then pktgen.quit() end
