using System.Net;
using System.Text;
using System.Text.Json;
using IpvlanCni.Ipam;
using IpvlanCni.Network;

namespace IpvlanCni.ClusterIpam;

/// <summary>Who asks: the idempotency key (node, container ID, interface) and the pod it belongs to (stored, never a key).</summary>
public sealed record Attachment(string Node, string ContainerId, string IfName)
{
    public string PodNamespace { get; init; } = "";
    public string PodName { get; init; } = "";
    public string PodUid { get; init; } = "";
    /// <summary>This node's boot and its monotonic milliseconds at ADD: GC's grace for an ADD racing the runtime's list.</summary>
    public string BootId { get; init; } = "";
    public long BootMilliseconds { get; init; }

    public string Id => $"{Node}/{ContainerId}/{IfName}";
}

/// <summary>One address an attachment holds: the prefix and gateway it answers with, and the key that owns it.</summary>
public sealed record HeldAddress(IpPrefix Address, IPAddress? Gateway, string Key);

/// <summary>The value of an attachment key: live with its addresses, or a DEL's tombstone.</summary>
public sealed record AttachmentRecord(bool Live, IReadOnlyList<HeldAddress> Addresses, Attachment? Owner)
{
    public static AttachmentRecord Tombstone { get; } = new(false, [], null);

    public string Encode()
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("state", Live ? "live" : "deleted");
            if (Live && Owner is { } o)
            {
                w.WriteStartArray("ips");
                foreach (var a in Addresses)
                {
                    w.WriteStartObject();
                    w.WriteString("address", IpMath.Format(a.Address));
                    if (a.Gateway is { } g)
                        w.WriteString("gateway", IpMath.Format(g));
                    w.WriteString("key", a.Key);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteString("node", o.Node);
                w.WriteString("podNamespace", o.PodNamespace);
                w.WriteString("podName", o.PodName);
                w.WriteString("podUid", o.PodUid);
                w.WriteString("bootId", o.BootId);
                w.WriteNumber("bootMs", o.BootMilliseconds);
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    /// <summary>Parses a stored value; one this code did not write is refused (InvalidDataException), never guessed.</summary>
    public static AttachmentRecord Decode(KeyValue kv, KeyLayout keys)
    {
        try
        {
            using var doc = JsonDocument.Parse(kv.Value);
            var root = doc.RootElement;
            string state = root.GetProperty("state").GetString() ?? "";
            if (state == "deleted")
                return Tombstone;
            if (state != "live")
                throw new InvalidDataException($"state \"{state}\"");
            var parts = kv.Key[keys.AllAttachments.Length..].Split('/');
            if (parts.Length != 3)
                throw new InvalidDataException("key is not att/<node>/<container>/<ifname>");
            string S(string name) => root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "";
            var owner = new Attachment(parts[0], parts[1], parts[2])
            {
                PodNamespace = S("podNamespace"),
                PodName = S("podName"),
                PodUid = S("podUid"),
                BootId = S("bootId"),
                BootMilliseconds = root.TryGetProperty("bootMs", out var ms) && ms.TryGetInt64(out long t) ? t : 0,
            };
            var held = new List<HeldAddress>();
            foreach (var ip in root.GetProperty("ips").EnumerateArray())
            {
                if (!IpMath.TryParseCidr(ip.GetProperty("address").GetString(), out var prefix))
                    throw new InvalidDataException("address");
                IPAddress? gateway = null;
                if (ip.TryGetProperty("gateway", out var g) && !IpMath.TryParse(g.GetString(), out gateway!))
                    throw new InvalidDataException("gateway");
                string key = ip.GetProperty("key").GetString() ?? "";
                // The key must be the address's own key: a DEL deletes exactly the keys it names.
                if (key != keys.IpKey(prefix.Address))
                    throw new InvalidDataException($"key \"{key}\" is not the key of {IpMath.Format(prefix.Address)}");
                held.Add(new HeldAddress(prefix, gateway, key));
            }
            return new AttachmentRecord(true, held, owner);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or InvalidDataException)
        {
            throw new InvalidDataException($"{kv.Key}: not an attachment record ({e.Message})", e);
        }
    }
}

/// <summary>The value of an address key: which attachment holds it (for operators and the consistency check).</summary>
public static class OwnerRecord
{
    public static string Encode(IPAddress address, Attachment a)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("ip", IpMath.Format(address));
            w.WriteString("attachment", a.Id);
            w.WriteString("node", a.Node);
            if (a.PodName.Length > 0)
                w.WriteString("pod", $"{a.PodNamespace}/{a.PodName}");
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    /// <summary>The attachment id ("node/cid/if") an address key names, or null when the value is not ours.</summary>
    public static string? AttachmentOf(string value)
    {
        try
        {
            using var doc = JsonDocument.Parse(value);
            return doc.RootElement.TryGetProperty("attachment", out var a) ? a.GetString() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    public static string? PodOf(string value)
    {
        try
        {
            using var doc = JsonDocument.Parse(value);
            return doc.RootElement.TryGetProperty("pod", out var a) ? a.GetString() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

public static class BlockRecord
{
    public static string Encode(string node) => $"{{\"node\":{JsonSerializer.Serialize(node, ValueJson.Default.String)}}}";

    public static string? NodeOf(string value)
    {
        try
        {
            using var doc = JsonDocument.Parse(value);
            return doc.RootElement.TryGetProperty("node", out var n) ? n.GetString() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(string))]
internal sealed partial class ValueJson : System.Text.Json.Serialization.JsonSerializerContext;
