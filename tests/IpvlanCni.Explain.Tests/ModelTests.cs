using System.Net;
using System.Text.Json;

namespace IpvlanCni.Explain.Tests;

/// <summary>Verdicts and the deciding kernel function on recorded snapshots, some changed to cases the demo does not build.</summary>
public sealed class ModelTests
{
    static Hop Decider(Trace trace) => (trace.Reply.Count > 0 ? trace.Reply : trace.Request)[^1];

    [Theory]
    [InlineData("l2-plain", "demo-p1", "10.100.0.11", Verdict.Reachable)]
    [InlineData("l2-plain", "demo-p1", "192.168.3.1", Verdict.Unreachable)]
    [InlineData("l2-plain", "node", "10.100.0.10", Verdict.Unreachable)]
    [InlineData("l2-host", "demo-p3", "192.168.3.1", Verdict.Reachable)]
    [InlineData("l2-host", "node", "fd00:0:100::10", Verdict.Reachable)]
    [InlineData("l3-plain", "demo-p7", "fd00:0:3::1", Verdict.Unreachable)]
    [InlineData("l3-plain", "demo-p7", "10.200.0.254", Verdict.Reachable)]
    [InlineData("l3-egress", "demo-p13", "fd00:0:3::254", Verdict.Reachable)]
    [InlineData("l3s-plain", "demo-p16", "10.250.2.10", Verdict.Reachable)]
    [InlineData("l3s-plain", "node", "10.250.1.10", Verdict.Unreachable)]
    [InlineData("l3s-egress", "demo-p22", "192.168.3.254", Verdict.Unreachable)]
    public void Verdicts_on_the_demo_node_match_its_matrix(string snapshot, string from, string to, Verdict expected) =>
        Assert.Equal(expected, Replay.Explain(snapshot, from, to).Verdict);

    [Theory]
    [InlineData("l2-plain", "fd00:0:100::11", "ipvlan_xmit_mode_l2")]
    [InlineData("l3-plain", "10.200.1.11", "ipvlan_xmit_mode_l3")]
    [InlineData("l3s-plain", "10.250.1.11", "ipvlan_xmit_mode_l3")]
    public void A_private_port_drops_traffic_between_its_slaves(string snapshot, string to, string function)
    {
        string pod = snapshot == "l2-plain" ? "demo-p1" : snapshot == "l3-plain" ? "demo-p7" : "demo-p16";
        var trace = Replay.Explain(Replay.WithFlag(Replay.Load(snapshot), "private"), pod, to);
        Assert.Equal(Verdict.Unreachable, trace.Verdict);
        Assert.Equal(function, Decider(trace).Function);
        Assert.Contains("private", trace.Cause);
        Assert.StartsWith("\"flag\": \"bridge\"", trace.Fix);
    }

    [Fact]
    public void A_vepa_port_sends_slave_to_slave_frames_to_the_wire_where_nothing_reflects_them()
    {
        var trace = Replay.Explain(Replay.WithFlag(Replay.Load("l2-plain"), "vepa"), "demo-p1", "10.100.0.11");
        Assert.Equal(Verdict.Unreachable, trace.Verdict);
        Assert.Contains(trace.Request, h => h.Decision.Contains("vepa"));
        Assert.Contains("reflective relay", trace.Fix);
    }

    [Fact]
    public void An_l3_slave_never_arps_and_the_masters_own_address_is_not_in_the_hash()
    {
        var trace = Replay.Explain("l3-plain", "demo-p7", "10.200.0.1");
        Assert.Contains(trace.Request, h => h.Function == "neigh_resolve_output" && h.Decision.Contains("NOARP"));
        Assert.Contains(trace.Request, h => h.Decision.Contains("never in the port's hash"));
    }

    [Fact]
    public void Without_the_plugins_records_nat_is_unknown()
    {
        var snapshot = Replay.Load("l2-egress") with { Masquerade = null };
        var trace = Replay.Explain(snapshot, "demo-p5", "192.168.3.254");
        Assert.Equal(Verdict.Unknown, trace.Verdict);
        Assert.Contains("ipMasq", trace.Cause);
    }

    [Fact]
    public void Without_the_nat_rule_the_reply_never_finds_its_way_back()
    {
        var snapshot = Replay.Load("l2-egress") with { Masquerade = [] };
        var trace = Replay.Explain(snapshot, "demo-p5", "192.168.3.254");
        Assert.Equal(Verdict.Unreachable, trace.Verdict);
        Assert.Equal("\"egress\": \"host\", \"ipMasq\": true", trace.Fix);
    }

    [Fact]
    public void A_nic_whose_other_end_is_not_in_the_snapshot_makes_what_lies_beyond_unknown()
    {
        var snapshot = Replay.Load("l2-plain");
        // Forget the business network's namespace: ens10 is then a NIC like any physical one.
        snapshot = snapshot with { Namespaces = [.. snapshot.Namespaces.Where(n => n.Id != "/run/netns/demo-biz")] };
        var trace = Replay.Explain(snapshot, "demo-p1", "10.100.0.254");
        Assert.Equal(Verdict.Unknown, trace.Verdict);
        Assert.Contains("beyond ens10", trace.Cause);
    }

    [Fact]
    public void The_json_has_the_verdict_and_the_hops()
    {
        var json = JsonDocument.Parse(Replay.Explain("l3-plain", "demo-p7", "192.168.3.1").ToJson()).RootElement;
        Assert.Equal("unreachable", json.GetProperty("verdict").GetString());
        Assert.Equal("\"hostAccess\": {}", json.GetProperty("fix").GetString());
        Assert.True(json.GetProperty("request").GetArrayLength() > 2);
        Assert.False(string.IsNullOrEmpty(json.GetProperty("request")[0].GetProperty("function").GetString()));
    }

    [Fact]
    public void A_snapshot_survives_a_json_round_trip()
    {
        var snapshot = Replay.Load("l3s-egress");
        string json = snapshot.ToJson();
        Assert.Equal(json, NodeSnapshot.FromJson(json).ToJson());
    }

    [Fact]
    public void A_snapshot_without_the_node_is_refused() =>
        Assert.Throws<FormatException>(() => Explainer.Explain(Replay.Load("l2-plain") with { Node = "elsewhere" }, "node", IPAddress.Loopback));
}
