//! The `[[groups]]` array: tunnel groups (ECMP over tunnels) and the
//! rules that tie them to the peers.
//!
//! A prefix routes to exactly one peer or group: a group prefix equal to a
//! peer's allowed IP or to another group's prefix is refused. Nested
//! prefixes are allowed on both sides; the data path takes the longest
//! match across peers' allowed IPs and group prefixes, as an operator
//! reading a routing table expects (a member's own `/32` inside the
//! group's `/16` reaches that member only).

use std::collections::{HashMap, HashSet};

use serde_spanned::Spanned;

use super::Ctx;
use crate::cidr::Cidr;
use crate::error::ConfError;
use crate::keys::PublicKey;
use crate::schema::Node;
use crate::{GroupConf, PeerConf, MAX_GROUP_MEMBERS};

/// Longest group name.
const MAX_NAME_LEN: usize = 32;

/// Whether `s` is a group name: 1..=32 of ASCII letters, digits, `_ . -`.
fn is_group_name(s: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

impl Ctx<'_> {
    /// Decodes `[[groups]]`. `peers` is `None` when the peers had errors:
    /// members and prefixes are then not checked against them (the peers'
    /// errors are reported already).
    pub(super) fn groups(
        &mut self,
        v: &Spanned<Node>,
        peers: Option<&[PeerConf]>,
    ) -> Option<Vec<GroupConf>> {
        let items = self.array(v, "groups".into())?;
        // Every prefix routed so far, and to whom.
        let mut routed: HashMap<Cidr, String> = HashMap::new();
        let mut keys: HashSet<PublicKey> = HashSet::new();
        for (i, peer) in peers.unwrap_or_default().iter().enumerate() {
            keys.insert(peer.public_key);
            for cidr in &peer.allowed_ips {
                routed.entry(*cidr).or_insert_with(|| format!("peers[{i}]"));
            }
        }
        let mut names: HashMap<String, String> = HashMap::new();
        let mut groups = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let path = format!("groups[{i}]");
            let Some(group) = self.group(item, &path, peers.map(|_| &keys), &mut routed) else {
                ok = false;
                continue;
            };
            if let Some(first) = names.get(&group.name) {
                let span = match item.get_ref() {
                    Node::Table(entries) => entries
                        .iter()
                        .find(|(k, _)| k.get_ref() == "name")
                        .map_or(item.span(), |(_, v)| v.span()),
                    _ => item.span(),
                };
                self.duplicate(
                    &span,
                    format!("{path}.name"),
                    &format!("{first}.name"),
                    group.name.clone(),
                );
                ok = false;
            } else {
                names.insert(group.name.clone(), path);
            }
            groups.push(group);
        }
        ok.then_some(groups)
    }

    /// One `[[groups]]` table. `keys`: the peers' public keys, when known.
    /// Its prefixes are added to `routed`.
    fn group(
        &mut self,
        v: &Spanned<Node>,
        path: &str,
        keys: Option<&HashSet<PublicKey>>,
        routed: &mut HashMap<Cidr, String>,
    ) -> Option<GroupConf> {
        let t = self.table(v, path.to_owned(), &["name", "members", "prefixes"])?;
        let name = self.required(&t, "name").and_then(|v| {
            let s = self.string(v, t.path("name"))?;
            if is_group_name(s) {
                return Some(s.to_owned());
            }
            let at = self.at(&v.span());
            self.errors.push(ConfError::BadGroupName {
                at,
                path: t.path("name"),
                value: s.to_owned(),
            });
            None
        });
        let members = self.required(&t, "members").and_then(|v| {
            let members_path = t.path("members");
            let members = self.each(v, &members_path, |c, item, p| {
                let key = c.key::<PublicKey>(item, p.clone())?;
                if keys.is_some_and(|keys| !keys.contains(&key)) {
                    let at = c.at(&item.span());
                    c.errors.push(ConfError::UnknownGroupMember {
                        at,
                        path: p,
                        key: key.to_string(),
                    });
                    return None;
                }
                Some((key, item.span()))
            })?;
            if !self.non_empty(v, &members_path, members.len()) {
                return None;
            }
            if members.len() > MAX_GROUP_MEMBERS {
                let at = self.at(&v.span());
                self.errors.push(ConfError::TooManyMembers {
                    at,
                    path: members_path,
                    count: members.len(),
                    max: MAX_GROUP_MEMBERS,
                });
                return None;
            }
            let mut seen: HashSet<PublicKey> = HashSet::new();
            let mut ok = true;
            for (j, (key, span)) in members.iter().enumerate() {
                if !seen.insert(*key) {
                    self.duplicate(
                        span,
                        format!("{members_path}[{j}]"),
                        &members_path,
                        key.to_string(),
                    );
                    ok = false;
                }
            }
            ok.then(|| members.into_iter().map(|(k, _)| k).collect::<Vec<_>>())
        });
        let prefixes = self.required(&t, "prefixes").and_then(|v| {
            let prefixes_path = t.path("prefixes");
            let prefixes = self.each(v, &prefixes_path, |c, item, p| {
                let cidr = c.canonical_cidr(item, p)?;
                Some((cidr, item.span()))
            })?;
            if !self.non_empty(v, &prefixes_path, prefixes.len()) {
                return None;
            }
            let mut ok = true;
            for (j, (cidr, span)) in prefixes.iter().enumerate() {
                let here = format!("{prefixes_path}[{j}]");
                match routed.get(cidr) {
                    Some(other) if other == path => {
                        self.duplicate(span, here, &prefixes_path, cidr.to_string());
                        ok = false;
                    }
                    Some(other) => {
                        let at = self.at(span);
                        self.errors.push(ConfError::GroupPrefixTaken {
                            at,
                            path: here,
                            cidr: cidr.to_string(),
                            other: other.clone(),
                        });
                        ok = false;
                    }
                    None => {
                        routed.insert(*cidr, path.to_owned());
                    }
                }
            }
            ok.then(|| prefixes.into_iter().map(|(c, _)| c).collect::<Vec<_>>())
        });
        Some(GroupConf {
            name: name?,
            members: members?,
            prefixes: prefixes?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::is_group_name;

    #[test]
    fn group_names() {
        assert!(is_group_name("site-a"));
        assert!(is_group_name("a.b_c"));
        assert!(is_group_name(&"x".repeat(32)));
        assert!(!is_group_name(""));
        assert!(!is_group_name(&"x".repeat(33)));
        assert!(!is_group_name("has space"));
        assert!(!is_group_name("a/b"));
    }
}
