using System.Collections;
using System.Text.Json;
using IpvlanCni.Cni;
using IpvlanCni.Interop;

namespace IpvlanCni.Ipam;

/// <summary>
/// The executable run as `ipvlan-cni-ipam` (a second name of the one binary): a standalone CNI IPAM plugin, so
/// macvlan, bridge or the reference ipvlan can use cluster-wide addresses. It asks the node agent, like the in-process
/// IPAM type does; the dispatcher does env, stdin, versions and error JSON.
/// </summary>
public sealed class StandaloneIpam : ICniPlugin
{
    public const string ExecutableName = ClusterAgentIpam.TypeName;

    public static int Run()
    {
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (DictionaryEntry entry in Environment.GetEnvironmentVariables())
            environment[(string)entry.Key] = (string?)entry.Value ?? "";
        Stream stdin = StandardStream.IsInputTerminal ? new MemoryStream() : StandardStream.OpenInput();
        using var stdout = StandardStream.OpenOutput();
        return CniDispatcher.Run(new StandaloneIpam(), environment, stdin, stdout);
    }

    static ClusterAgentIpam Ipam(CniRequest request)
    {
        using var doc = JsonDocument.Parse(request.ConfigBytes);
        if (!doc.RootElement.TryGetProperty("ipam", out var ipam) || ipam.ValueKind != JsonValueKind.Object)
            throw new CniException(CniErrorCode.InvalidNetworkConfig, "ipam: missing (an IPAM plugin reads its keys from the network's ipam object)");
        return ClusterAgentIpam.Parse(ipam.Clone(), request);
    }

    public CniResult Add(CniRequest request) => Ipam(request).Allocate(request);
    public void Delete(CniRequest request) => Ipam(request).Release(request);
    public void Check(CniRequest request) => Ipam(request).Check(request);
    public void Status(CniRequest request) => Ipam(request).Status(request);
    public void GarbageCollect(CniRequest request) => Ipam(request).GarbageCollect(request, request.Config.ValidAttachments ?? []);
}
