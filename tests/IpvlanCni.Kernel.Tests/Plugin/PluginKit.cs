using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Network;
using IpvlanCni.Scenarios;

namespace IpvlanCni.Kernel.Tests.Plugin;

/// <summary>Reading plugin results and the kernel/disk state they should have produced.</summary>
static class PluginKit
{
    public static readonly string[] Versions = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

    public static IPAddress Address(this CniCall added, AddressFamily family = AddressFamily.InterNetwork) =>
        added.Addresses.First(a => a.Family == family).Address;

    /// <summary>Sets (or with null removes) keys of a configuration, returning it for chaining.</summary>
    public static JsonObject With(this JsonObject config, string key, JsonNode? value)
    {
        if (value is null)
            config.Remove(key);
        else
            config[key] = value;
        return config;
    }

    public static JsonObject Ipam(this JsonObject config) => config["ipam"]!.AsObject();

    /// <summary>The host-local reservation file for an address of a network.</summary>
    public static bool IsReserved(this PluginRunner cni, string network, IPAddress address) =>
        File.Exists(Path.Combine(cni.DataDir, network, address.ToString()));

    public static bool HasRecord(this PluginRunner cni, string network, string containerId, string ifName = "eth0") =>
        File.Exists(Path.Combine(cni.StateDir, "attachments", network, $"{containerId}@{ifName}"));

    /// <summary>The pod's route to a destination ("0.0.0.0/0") in the main table, if any.</summary>
    public static RouteInfo? Route(this TestPod pod, string destination) =>
        pod.Client.ListRoutes(IpPrefix.Parse(destination).Family).FirstOrDefault(r => r.Destination.Equals(IpPrefix.Parse(destination)));
}
