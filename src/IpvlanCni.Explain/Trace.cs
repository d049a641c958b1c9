using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace IpvlanCni.Explain;

public enum Verdict { Reachable, Unreachable, Unknown }

/// <summary>One decision on the path: where the packet was, the kernel function (or table) that decided, and why.</summary>
public sealed record Hop(string Namespace, string Function, string Decision);

/// <summary>
/// An ICMP echo round trip through the model: the request's hops, the reply's (empty when the request never
/// arrived), the verdict, and when it is not "reachable" the cause in one sentence and the configuration that fixes it.
/// </summary>
public sealed record Trace(string From, string To, Verdict Verdict, List<Hop> Request, List<Hop> Reply, string? Cause, string? Fix)
{
    /// <summary>The text `ipvlan-cni explain` prints (golden-tested: a wording change is a visible diff).</summary>
    public string ToText()
    {
        var text = new StringBuilder();
        text.Append($"explain: ICMP echo from {From} to {To}\n");
        Section(text, "request", Request);
        if (Reply.Count > 0)
            Section(text, "reply", Reply);
        text.Append($"verdict: {VerdictName}\n");
        if (Cause is not null)
            text.Append($"cause: {Cause}\n");
        if (Fix is not null)
            text.Append($"fix: {Fix}\n");
        return text.ToString();
    }

    static void Section(StringBuilder text, string name, List<Hop> hops)
    {
        text.Append($"{name}:\n");
        int width = hops.Count == 0 ? 0 : hops.Max(h => h.Namespace.Length);
        foreach (var (hop, i) in hops.Select((h, i) => (h, i + 1)))
            text.Append($"  {i,2}. {hop.Namespace.PadRight(width)}  {hop.Function}: {hop.Decision}\n");
    }

    public string VerdictName => Verdict switch { Verdict.Reachable => "reachable", Verdict.Unreachable => "unreachable", _ => "unknown" };

    public string ToJson() => JsonSerializer.Serialize(new TraceJson(VerdictName, From, To, Request, Reply, Cause, Fix), TraceJsonContext.Default.TraceJson);
}

sealed record TraceJson(string Verdict, string From, string To, List<Hop> Request, List<Hop> Reply, string? Cause, string? Fix);

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(TraceJson))]
partial class TraceJsonContext : JsonSerializerContext;
