using System.Net;
using System.Text.Json;
using IpvlanCni.Ipam;

namespace IpvlanCni.ClusterIpam;

/// <summary>Everything one network holds in etcd, read at one revision: what operators see and the storm tests' oracle checks.</summary>
public sealed class ClusterView
{
    public required ClusterIpamConfig Config { get; init; }
    public required KeyLayout Keys { get; init; }
    public required long Revision { get; init; }
    /// <summary>Address key -> its key-value.</summary>
    public required IReadOnlyDictionary<IPAddress, KeyValue> Addresses { get; init; }
    public required IReadOnlyList<(KeyValue Kv, AttachmentRecord? Record, string? Error)> Attachments { get; init; }
    public required IReadOnlyDictionary<string, KeyValue> Blocks { get; init; }
    public required IReadOnlyList<KeyValue> Affinities { get; init; }

    public IEnumerable<(KeyValue Kv, AttachmentRecord Record)> LiveAttachments =>
        Attachments.Where(a => a.Record is { Live: true }).Select(a => (a.Kv, a.Record!));

    public static ClusterView Read(IKvStore store, ClusterIpamConfig config, DateTimeOffset deadline)
    {
        var keys = new KeyLayout(config.KeyPrefix, config.Network);
        var s = store.Read([ClusterIpam.Read.Under(keys.Root)], deadline);
        var addresses = new Dictionary<IPAddress, KeyValue>();
        foreach (var kv in s.Under(keys.IpPrefix))
            if (keys.AddressOf(kv.Key) is { } ip)
                addresses[ip] = kv;
        var attachments = s.Under(keys.AllAttachments).Select(kv =>
        {
            try
            {
                return (kv, (AttachmentRecord?)AttachmentRecord.Decode(kv, keys), (string?)null);
            }
            catch (InvalidDataException e)
            {
                return (kv, null, e.Message);
            }
        }).ToList();
        return new ClusterView
        {
            Config = config,
            Keys = keys,
            Revision = s.Revision,
            Addresses = addresses,
            Attachments = attachments,
            Blocks = s.Under(keys.BlockPrefix).ToDictionary(kv => kv.Key[keys.BlockPrefix.Length..]),
            Affinities = [.. s.Under(keys.AllAffinities)],
        };
    }

    string BlockOwner(IPAddress ip) =>
        Blocks.GetValueOrDefault(Block.Containing(ip, Config.BlockSize).Id) is { } b ? BlockRecord.NodeOf(b.Value) ?? "?" : "-";

    public void Show(TextWriter o, string? node, bool json)
    {
        var rows = LiveAttachments
            .Where(a => node is null || a.Record.Owner!.Node == node)
            .SelectMany(a => a.Record.Addresses.Select(h => (Ip: h.Address, Owner: a.Record.Owner!, Block: Block.Containing(h.Address.Address, Config.BlockSize).Id)))
            .OrderBy(r => r.Owner.Node, StringComparer.Ordinal).ThenBy(r => Keys.IpKey(r.Ip.Address), StringComparer.Ordinal).ToList();
        if (json)
        {
            IpamCommand.WriteJson(o, w =>
            {
                w.WriteStartObject();
                w.WriteString("network", Config.Network);
                w.WriteNumber("revision", Revision);
                w.WriteStartArray("allocations");
                foreach (var r in rows)
                {
                    w.WriteStartObject();
                    w.WriteString("address", IpMath.Format(r.Ip.Address));
                    w.WriteString("cidr", IpMath.Format(r.Ip));
                    w.WriteString("node", r.Owner.Node);
                    w.WriteString("containerId", r.Owner.ContainerId);
                    w.WriteString("ifName", r.Owner.IfName);
                    w.WriteString("pod", r.Owner.PodName.Length > 0 ? $"{r.Owner.PodNamespace}/{r.Owner.PodName}" : "");
                    w.WriteString("podUid", r.Owner.PodUid);
                    w.WriteString("block", r.Block);
                    w.WriteString("blockOwner", BlockOwner(r.Ip.Address));
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteStartArray("blocks");
                foreach (var (id, kv) in Blocks.OrderBy(b => b.Key, StringComparer.Ordinal))
                {
                    w.WriteStartObject();
                    w.WriteString("block", id);
                    w.WriteString("node", BlockRecord.NodeOf(kv.Value));
                    w.WriteNumber("used", Addresses.Keys.Count(ip => Block.Containing(ip, Config.BlockSize).Id == id));
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            });
            return;
        }
        o.WriteLine($"network {Config.Network} at revision {Revision}: {rows.Count} allocation(s), {Blocks.Count} block(s)");
        o.WriteLine($"{"ADDRESS",-28} {"NODE",-16} {"BLOCK (OWNER)",-30} {"POD",-30} ATTACHMENT");
        foreach (var r in rows)
        {
            string owner = BlockOwner(r.Ip.Address);
            string block = owner == r.Owner.Node ? r.Block : $"{r.Block} ({owner}){(owner == "-" ? "" : " borrowed")}";
            string pod = r.Owner.PodName.Length > 0 ? $"{r.Owner.PodNamespace}/{r.Owner.PodName}" : "-";
            o.WriteLine($"{IpMath.Format(r.Ip),-28} {r.Owner.Node,-16} {block,-30} {pod,-30} {r.Owner.ContainerId}/{r.Owner.IfName}");
        }
    }

    /// <summary>calicoctl ipam check's questions: one owner per address and back, nothing outside the ranges, blocks and affinities agree.</summary>
    public List<string> Check()
    {
        var problems = new List<string>();
        foreach (var (kv, _, error) in Attachments.Where(a => a.Error is not null))
            problems.Add($"unreadable attachment {kv.Key}: {error}");
        var claimedBy = new Dictionary<IPAddress, string>();
        foreach (var (kv, record) in LiveAttachments)
            foreach (var h in record.Addresses)
            {
                var ip = h.Address.Address;
                if (claimedBy.TryGetValue(ip, out var other))
                    problems.Add($"{IpMath.Format(ip)} is listed by two attachments: {other} and {record.Owner!.Id}");
                claimedBy[ip] = record.Owner!.Id;
                if (!Addresses.TryGetValue(ip, out var ipKv))
                    problems.Add($"{record.Owner!.Id} lists {IpMath.Format(ip)} but its address key is missing");
                else if (OwnerRecord.AttachmentOf(ipKv.Value) != record.Owner!.Id)
                    problems.Add($"{IpMath.Format(ip)} names {OwnerRecord.AttachmentOf(ipKv.Value)} as owner, but {record.Owner!.Id} lists it");
            }
        foreach (var (ip, kv) in Addresses)
        {
            if (!claimedBy.ContainsKey(ip))
                problems.Add($"{IpMath.Format(ip)} is allocated (to {OwnerRecord.AttachmentOf(kv.Value) ?? "?"}) but no live attachment lists it (leaked)");
            if (!Config.HostLocal.RangeSets.Any(s => s.Contains(ip)))
                problems.Add($"{IpMath.Format(ip)} is outside every range of network {Config.Network}");
        }
        foreach (var aff in Affinities)
        {
            var rest = aff.Key[Keys.AllAffinities.Length..].Split('/');
            if (rest.Length != 2 || !Blocks.TryGetValue(rest[1], out var block) || BlockRecord.NodeOf(block.Value) != rest[0])
                problems.Add($"affinity {aff.Key} has no block owned by {rest[0]}");
        }
        foreach (var (id, kv) in Blocks)
            if (!Affinities.Any(a => a.Key == Keys.AffinityKey(BlockRecord.NodeOf(kv.Value) ?? "?", Block.TryParse(id) ?? default)))
                problems.Add($"block {id} (owner {BlockRecord.NodeOf(kv.Value)}) has no affinity key");
        return problems;
    }

    /// <summary>Frees the attachment that holds <paramref name="ip"/> (all its addresses: an attachment is released whole).</summary>
    public string Release(IKvStore store, IPAddress ip, DateTimeOffset deadline)
    {
        ip = IpMath.Canonical(ip);
        if (!Addresses.TryGetValue(ip, out var ipKv))
            return $"{IpMath.Format(ip)} is not allocated";
        var holder = LiveAttachments.FirstOrDefault(a => a.Record.Addresses.Any(h => h.Address.Address.Equals(ip)));
        if (holder.Kv is null)
        {
            // A leaked address key (no attachment lists it): delete it as read.
            var txn = new Txn([Compare.Unchanged(ipKv)], [Write.Delete(ipKv.Key)], []);
            return store.Commit(txn, deadline).Succeeded ? $"released leaked {IpMath.Format(ip)}" : $"{IpMath.Format(ip)} changed meanwhile; nothing done";
        }
        long lease = store.GrantLease(Config.TombstoneSeconds, deadline);
        var release = new Allocator(Config).ReleaseTxn(holder.Kv, holder.Record, Write.Put(holder.Kv.Key, AttachmentRecord.Tombstone.Encode(), lease));
        return store.Commit(release, deadline).Succeeded
            ? $"released {string.Join(", ", holder.Record.Addresses.Select(h => IpMath.Format(h.Address)))} of {holder.Record.Owner!.Id}"
            : $"{holder.Record.Owner!.Id} changed meanwhile; nothing done";
    }

    /// <summary>Frees every attachment and block of <paramref name="node"/>, each as it was read.</summary>
    public string Forget(IKvStore store, string node, DateTimeOffset deadline)
    {
        int released = 0, changed = 0, blocks = 0;
        long lease = 0;
        foreach (var (kv, record) in LiveAttachments.Where(a => a.Record.Owner!.Node == node))
        {
            if (lease == 0)
                lease = store.GrantLease(Config.TombstoneSeconds, deadline);
            if (store.Commit(new Allocator(Config).ReleaseTxn(kv, record, Write.Put(kv.Key, AttachmentRecord.Tombstone.Encode(), lease)), deadline).Succeeded)
                released++;
            else
                changed++;
        }
        foreach (var aff in Affinities.Where(a => a.Key.StartsWith(Keys.AffinityPrefix(node), StringComparison.Ordinal)))
        {
            string id = aff.Key[Keys.AffinityPrefix(node).Length..];
            var writes = new List<Write> { Write.Delete(aff.Key) };
            var compares = new List<Compare> { Compare.Unchanged(aff) };
            if (Blocks.TryGetValue(id, out var block) && BlockRecord.NodeOf(block.Value) == node)
            {
                compares.Add(Compare.Unchanged(block));
                writes.Add(Write.Delete(block.Key));
            }
            if (store.Commit(new Txn(compares, writes, []), deadline).Succeeded)
                blocks++;
        }
        return $"node {node}: released {released} attachment(s), {blocks} block(s)" + (changed > 0 ? $"; {changed} changed meanwhile (run forget again)" : "");
    }
}
