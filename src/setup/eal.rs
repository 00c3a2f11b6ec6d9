//! What `wgdp setup` needs to know from the EAL arguments without starting
//! EAL: which CPU each lcore runs on, and how much hugepage memory the
//! process will ask for.

use std::collections::BTreeMap;

/// A CPU list in the kernel's and EAL's syntax: `0-3,8,10-11`.
pub fn parse_cpu_list(s: &str) -> Result<Vec<u32>, String> {
    let mut cpus = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo, hi),
            None => (part, part),
        };
        let num = |x: &str| {
            x.trim()
                .parse::<u32>()
                .map_err(|_| format!("{part:?} is not a CPU number or range"))
        };
        let (lo, hi) = (num(lo)?, num(hi)?);
        if lo > hi {
            return Err(format!("{part:?}: range runs backwards"));
        }
        cpus.extend(lo..=hi);
    }
    Ok(cpus)
}

/// Splits `s` at the commas that are not inside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0u32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// A set written as `N`, `N-M` or `(list)`.
fn parse_group(s: &str) -> Result<Vec<u32>, String> {
    let inner = s
        .strip_prefix('(')
        .and_then(|x| x.strip_suffix(')'))
        .unwrap_or(s);
    parse_cpu_list(inner)
}

/// The `--lcores` syntax: `ELEM[,ELEM...]` where `ELEM` is `LCORES[@CPUS]`.
fn parse_lcores(s: &str) -> Result<BTreeMap<u32, Vec<u32>>, String> {
    let mut map = BTreeMap::new();
    for elem in split_top_level(s).into_iter().filter(|e| !e.is_empty()) {
        let (lcores, cpus) = match elem.split_once('@') {
            Some((l, c)) => (parse_group(l)?, Some(parse_group(c)?)),
            None => (parse_group(elem)?, None),
        };
        for l in lcores {
            map.insert(l, cpus.clone().unwrap_or_else(|| vec![l]));
        }
    }
    Ok(map)
}

/// A hexadecimal core mask (`-c 0x6`).
fn parse_mask(s: &str) -> Result<Vec<u32>, String> {
    let hex = s.trim_start_matches("0x").trim_start_matches("0X");
    let mut cpus = Vec::new();
    for (i, c) in hex.chars().rev().enumerate() {
        let nibble = c
            .to_digit(16)
            .ok_or_else(|| format!("core mask {s:?} is not hexadecimal"))?;
        for bit in 0..4 {
            if nibble & (1 << bit) != 0 {
                cpus.push(u32::try_from(i * 4 + bit).map_err(|_| "core mask too long")?);
            }
        }
    }
    Ok(cpus)
}

/// The value of option `name` (`-l`, `--lcores`) in `args`: `-l 0-2`,
/// `-l0-2` (short options only) or `--lcores=...`. The last one wins, as in
/// EAL.
fn option<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let mut found = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == name {
            found = it.next().map(String::as_str);
        } else if let Some(v) = a.strip_prefix(name) {
            let short = !name.starts_with("--");
            match v.strip_prefix('=') {
                Some(v) => found = Some(v),
                None if short && !v.is_empty() => found = Some(v),
                None => {}
            }
        }
    }
    found
}

/// Which CPUs each lcore runs on, from `-l`, `--lcores` or `-c`; without
/// any of them EAL makes one lcore per CPU (`None`: the identity).
pub fn lcore_cpus(args: &[String]) -> Result<Option<BTreeMap<u32, Vec<u32>>>, String> {
    if let Some(v) = option(args, "--lcores") {
        return parse_lcores(v).map(Some);
    }
    let identity = |cpus: Vec<u32>| cpus.into_iter().map(|c| (c, vec![c])).collect();
    if let Some(v) = option(args, "-l") {
        return parse_lcores(v).map(Some);
    }
    if let Some(v) = option(args, "-c") {
        return parse_mask(v).map(identity).map(Some);
    }
    Ok(None)
}

/// How EAL will use hugepages, from its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HugeUse {
    /// `--no-huge`: anonymous memory, no hugepages.
    None,
    /// `-m MB` or `--socket-mem a,b,...`: this many MiB, reserved up front.
    Fixed(u64),
    /// Neither: EAL grows its heap on demand; the caller estimates.
    Dynamic,
}

/// Reads `--no-huge`, `-m` and `--socket-mem`.
pub fn huge_use(args: &[String]) -> Result<HugeUse, String> {
    if args.iter().any(|a| a == "--no-huge") {
        return Ok(HugeUse::None);
    }
    if let Some(v) = option(args, "--socket-mem") {
        let mut total = 0u64;
        for part in v.split(',') {
            total += part
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("--socket-mem {v:?}: not a list of MiB"))?;
        }
        return Ok(HugeUse::Fixed(total));
    }
    if let Some(v) = option(args, "-m") {
        let mb = v
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("-m {v:?}: not a number of MiB"))?;
        return Ok(HugeUse::Fixed(mb));
    }
    Ok(HugeUse::Dynamic)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn cpu_lists_parse_like_the_kernel_writes_them() {
        assert_eq!(parse_cpu_list("").unwrap(), Vec::<u32>::new());
        assert_eq!(parse_cpu_list("0-2,8\n").unwrap(), vec![0, 1, 2, 8]);
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("a").is_err());
    }

    #[test]
    fn lcores_map_to_cpus() {
        let m = lcore_cpus(&args("-l 0-2 --in-memory")).unwrap().unwrap();
        assert_eq!(m[&2], vec![2]);
        let m = lcore_cpus(&args("-l0,4")).unwrap().unwrap();
        assert_eq!(m.keys().copied().collect::<Vec<_>>(), vec![0, 4]);
        let m = lcore_cpus(&args("--lcores=0@10,1@(12,13),(2-3)@14,5"))
            .unwrap()
            .unwrap();
        assert_eq!(m[&0], vec![10]);
        assert_eq!(m[&1], vec![12, 13]);
        assert_eq!(m[&3], vec![14]);
        assert_eq!(m[&5], vec![5]);
        let m = lcore_cpus(&args("-c 0x6")).unwrap().unwrap();
        assert_eq!(m.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(lcore_cpus(&args("--in-memory")).unwrap(), None);
        assert!(lcore_cpus(&args("-c 0xZ")).is_err());
    }

    #[test]
    fn memory_options_are_read() {
        assert_eq!(huge_use(&args("-l 0 --no-huge")).unwrap(), HugeUse::None);
        assert_eq!(huge_use(&args("-m 512")).unwrap(), HugeUse::Fixed(512));
        assert_eq!(
            huge_use(&args("--socket-mem=1024,2048")).unwrap(),
            HugeUse::Fixed(3072)
        );
        assert_eq!(huge_use(&args("-l 0-2")).unwrap(), HugeUse::Dynamic);
        assert!(huge_use(&args("-m lots")).is_err());
    }
}
