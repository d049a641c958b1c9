using System.Net;
using System.Text.Json.Nodes;
using IpvlanCni.Network;

namespace IpvlanCni.Scenarios;

/// <summary>A way to configure the network: what a matrix row names as the configuration that makes it work.</summary>
public sealed record Setup(string Key, string Label, Action<JsonObject> Configure)
{
    public static Setup Plain { get; } = new("plain", "(nothing)", _ => { });
    public static Setup HostAccess { get; } = new("host", "\"hostAccess\": {}", config => config["hostAccess"] = new JsonObject());
    public static Setup EgressThroughNode { get; } = new("egress", "\"egress\": \"host\", \"ipMasq\": true", config =>
    {
        config["egress"] = "host";
        config["ipMasq"] = true;
    });
}

/// <summary>
/// Pods attached by the plugin to one segment under one setup: A and B on a first network, and (when asked) C on a
/// second network of the same master in another subnet. Dispose DELs them all, so the next setup starts clean.
/// </summary>
public sealed class Deployment : IDisposable
{
    readonly List<(JsonObject Config, Pod Pod, string ContainerId)> _attached = [];

    public Deployment(Lab lab, Segment segment, Setup setup, bool secondNetwork)
    {
        Lab = lab;
        Segment = segment;
        try
        {
            string prefix = $"{segment.ModeName}-{setup.Key}";
            var first = lab.NetworkConfig($"{prefix}-a", segment);
            setup.Configure(first);
            A = Attach(first, $"{prefix}-pod-a");
            B = Attach(first, $"{prefix}-pod-b");
            if (secondNetwork)
            {
                var second = lab.NetworkConfig($"{prefix}-b", segment, subnet: 1);
                setup.Configure(second);
                C = Attach(second, $"{prefix}-pod-c");
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public Lab Lab { get; }
    public Segment Segment { get; }
    public AttachedPod A { get; } = null!;
    public AttachedPod B { get; } = null!;
    /// <summary>The pod on the second network; null unless asked for.</summary>
    public AttachedPod? C { get; }

    AttachedPod Attach(JsonObject config, string containerId)
    {
        var pod = Lab.AddPod();
        var added = Lab.Cni.Add(config, pod, containerId).Succeeded($"ADD {containerId}");
        _attached.Add((config, pod, containerId));
        return new AttachedPod(pod, added.Addresses);
    }

    public void Dispose()
    {
        var failures = new List<string>();
        foreach (var (config, pod, containerId) in Enumerable.Reverse(_attached))
        {
            var deleted = Lab.Cni.Del(config, pod, containerId);
            if (deleted.ExitCode != 0)
                failures.Add($"DEL {containerId}: {deleted}");
        }
        _attached.Clear();
        if (failures.Count > 0)
            throw new InvalidOperationException(string.Join("\n", failures));
    }
}

/// <summary>A pod and the addresses ADD gave it.</summary>
public sealed record AttachedPod(Pod Pod, IReadOnlyList<IpPrefix> Addresses)
{
    public NetNamespace Namespace => Pod.Namespace;

    public IPAddress Address(Family family) => Addresses.First(a => a.IsIPv4 == (family == Family.IPv4)).Address;
}
