namespace B25.Alerting.Storage;

/// <summary>
/// SQLite copies a journaled body in C heap blocks of the body's size whatever the journal does: an expression on the body
/// column loads the whole column, and marking the notification applied
/// loads it and builds the row again (an UPDATE rewrites the whole row), each once per apply. glibc
/// serves a block that size from mmap only until the first is freed; then it raises its threshold to that size and keeps
/// later ones in its arenas, which it does not give back while less than twice that is free at their top: tens of MB per
/// storm body, per thread's arena, resident for good (issue 11). A fixed threshold keeps blocks of a megabyte and more in
/// mmap, unmapped when freed; the smaller ones are as before.
/// </summary>
internal static class NativeHeap
{
    private const int MmapThreshold = -3; // M_MMAP_THRESHOLD
    private const int LargeBlock = 1 << 20;

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "mallopt")]
    private static extern int Mallopt(int parameter, int value);

    public static void ReturnLargeBlocks()
    {
        if (!OperatingSystem.IsLinux()) return;
        try
        {
            Mallopt(MmapThreshold, LargeBlock);
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc (or musl, whose mallopt does nothing): its allocator decides.
        }
    }
}
