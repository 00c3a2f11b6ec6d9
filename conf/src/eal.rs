//! What the configuration needs to know from `dpdk.eal_args` without
//! starting EAL: which lcores it enables, which CPU each runs on, and which
//! one is the main lcore (it runs the control thread, never a worker).

use std::collections::BTreeMap;

/// The highest CPU (and lcore) number accepted: the kernel's largest
/// `NR_CPUS` is 8192. Bounds the list a range expands to (`0-4000000000`
/// would otherwise ask for 16 GB).
pub const MAX_CPU: u32 = 8191;

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
        if hi > MAX_CPU {
            return Err(format!("{part:?}: CPU numbers go up to {MAX_CPU}"));
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
pub fn option<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
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

/// The lcore EAL makes its main lcore: `--main-lcore N`, else the lowest
/// enabled one. `None` where `lcores` is `None` (every CPU is an lcore and
/// the main one is CPU 0's, which is not known here).
pub fn main_lcore(
    args: &[String],
    lcores: Option<&BTreeMap<u32, Vec<u32>>>,
) -> Result<Option<u32>, String> {
    if let Some(v) = option(args, "--main-lcore") {
        return v
            .trim()
            .parse::<u32>()
            .map(Some)
            .map_err(|_| format!("--main-lcore {v:?} is not an lcore number"));
    }
    Ok(lcores.and_then(|m| m.keys().next().copied()))
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
        // Found by the conf_toml fuzz target: a huge range is refused, not
        // expanded.
        assert!(parse_cpu_list("999-999999999").is_err());
        assert_eq!(parse_cpu_list("8191").unwrap(), vec![8191]);
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
    fn the_main_lcore_is_named_or_the_lowest() {
        let a = args("-l 2,4-6 --main-lcore 4");
        let m = lcore_cpus(&a).unwrap();
        assert_eq!(main_lcore(&a, m.as_ref()).unwrap(), Some(4));
        let a = args("--lcores=3@0,1@1");
        let m = lcore_cpus(&a).unwrap();
        assert_eq!(main_lcore(&a, m.as_ref()).unwrap(), Some(1));
        assert_eq!(main_lcore(&args("--in-memory"), None).unwrap(), None);
        assert!(main_lcore(&args("--main-lcore x"), None).is_err());
    }
}
