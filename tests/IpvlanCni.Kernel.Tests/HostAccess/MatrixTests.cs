using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Network;
using IpvlanCni.Scenarios;

namespace IpvlanCni.Kernel.Tests.HostAccess;

/// <summary>
/// The design note's node, measured once for the class exactly as `make demo` measures it (the same lab and rows),
/// so the suite pays for the pods once; each row is its own test over every mode and family.
/// </summary>
public sealed class DesignNoteMatrix : IDisposable
{
    readonly Lazy<(Lab Lab, IReadOnlyList<Cell> Cells)> _measured = new(() =>
    {
        var lab = new Lab(Layout.DesignNote);
        try
        {
            return (lab, Matrix.Measure(lab, Rows.All));
        }
        catch
        {
            lab.Dispose();
            throw;
        }
    });

    public IReadOnlyList<Cell> Cells => _measured.Value.Cells;

    public void Dispose()
    {
        if (_measured.IsValueCreated)
            _measured.Value.Lab.Dispose();
    }
}

public sealed class MatrixTests(DesignNoteMatrix matrix) : KernelTest, IClassFixture<DesignNoteMatrix>
{
    public static TheoryData<string> RowIds => [.. Rows.All.Select(Id)];

    static string Id(Row row) => $"{row.Path} [{row.Setup.Key}]";

    [Theory]
    [MemberData(nameof(RowIds))]
    public void Every_cell_of_the_row_is_as_expected_on_the_design_note_node(string rowId)
    {
        var row = Rows.All.Single(r => Id(r) == rowId);
        var cells = matrix.Cells.Where(c => c.Row == row).ToList();
        Assert.Equal(Layout.DesignNote.Segments.Count * 2, cells.Count);
        var wrong = cells.Where(c => !c.AsExpected).Select(c => c.ToString()).ToList();
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
        Assert.Contains(cells, c => c.Reached is not null); // every row measures something
    }
}

/// <summary>The node's IP (and default route) on the master itself: the classic case where pods cannot reach it.</summary>
public sealed class NodeAddressOnMasterTests : KernelTest
{
    [Theory]
    [InlineData(IpvlanMode.L2)]
    [InlineData(IpvlanMode.L3)]
    [InlineData(IpvlanMode.L3S)]
    public void Host_access_rows_hold_when_the_node_ip_sits_on_the_master(IpvlanMode mode)
    {
        using var lab = new Lab(Layout.NodeAddressOnMaster(mode));
        Row[] rows =
        [
            Rows.PodToUnderlayPeer, Rows.PodToNodeWithoutHostAccess, Rows.NodeToPodWithoutHostAccess,
            Rows.PodToNodeWithHostAccess, Rows.NodeToPodWithHostAccess,
        ];
        var cells = Matrix.Measure(lab, rows);
        var wrong = cells.Where(c => !c.AsExpected).Select(c => c.ToString()).ToList();
        Assert.True(wrong.Count == 0, $"node IP {lab.NodePrimaryAddress(Family.IPv4)} on {lab.Layout.Segments[0].Master}:\n" + string.Join("\n", wrong));
        Assert.Equal(rows.Length * 2, cells.Count(c => c.Reached is not null));
    }
}
