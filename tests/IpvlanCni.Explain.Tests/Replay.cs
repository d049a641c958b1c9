using System.Net;
using IpvlanCni.Explain;

namespace IpvlanCni.Explain.Tests;

/// <summary>Snapshots recorded from the demo's node in the sandbox (Snapshots/, by ExplainAgreementTests), replayed.</summary>
static class Replay
{
    public static NodeSnapshot Load(string name) =>
        NodeSnapshot.FromJson(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Snapshots", $"{name}.json")));

    /// <summary>"node" or a pod's /run/netns name ("demo-p1").</summary>
    public static Trace Explain(NodeSnapshot snapshot, string from, string to) =>
        Explainer.Explain(snapshot, from == "node" ? snapshot.Node : $"/run/netns/{from}", IPAddress.Parse(to));

    public static Trace Explain(string snapshot, string from, string to) => Explain(Load(snapshot), from, to);

    /// <summary>The snapshot with every ipvlan link's flag replaced (what a port set up with another flag reports).</summary>
    public static NodeSnapshot WithFlag(NodeSnapshot snapshot, string flag) => snapshot with
    {
        Namespaces = [.. snapshot.Namespaces.Select(n => n with { Links = [.. n.Links.Select(l => l.Kind == "ipvlan" ? l with { Flag = flag } : l)] })],
    };
}
