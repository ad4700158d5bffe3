using MoEMesh.Dht.Ids;

namespace MoEMesh.Dht.Routing;

/// <summary>
/// Up to k contacts in least-recently-seen order (head first), plus a replacement cache of the most
/// recently seen contacts that did not fit, used when a member leaves.
/// </summary>
internal sealed class KBucket(int capacity, DateTimeOffset created)
{
    private readonly List<DhtContact> _contacts = [];
    private readonly List<DhtContact> _replacements = [];

    public IReadOnlyList<DhtContact> Contacts => _contacts;

    public IReadOnlyList<DhtContact> Replacements => _replacements;

    public bool IsFull => _contacts.Count >= capacity;

    /// <summary>When a lookup last went through this bucket's range.</summary>
    public DateTimeOffset LastLookup { get; set; } = created;

    /// <summary>The head contact being pinged before a possible eviction, if any.</summary>
    public NodeId? PendingPing { get; set; }

    public int IndexOf(NodeId id) => _contacts.FindIndex(c => c.Id == id);

    /// <summary>Moves a present contact to the tail (most recently seen), taking its latest address.</summary>
    public bool TryTouch(DhtContact contact)
    {
        int at = IndexOf(contact.Id);
        if (at < 0) return false;
        _contacts.RemoveAt(at);
        _contacts.Add(contact);
        return true;
    }

    public void Append(DhtContact contact)
    {
        _contacts.Add(contact);
        RemoveReplacement(contact.Id);
    }

    /// <summary>Remembers a contact that did not fit, most recent last, dropping the oldest beyond capacity.</summary>
    public void AddReplacement(DhtContact contact)
    {
        RemoveReplacement(contact.Id);
        _replacements.Add(contact);
        if (_replacements.Count > capacity) _replacements.RemoveAt(0);
    }

    /// <summary>Removes a contact; the most recently seen replacement takes its place.</summary>
    public bool Remove(NodeId id)
    {
        int at = IndexOf(id);
        if (at < 0) return RemoveReplacement(id);
        _contacts.RemoveAt(at);
        if (PendingPing == id) PendingPing = null;
        if (_replacements.Count > 0)
        {
            _contacts.Add(_replacements[^1]);
            _replacements.RemoveAt(_replacements.Count - 1);
        }
        return true;
    }

    /// <summary>Takes every contact and replacement out (for a split).</summary>
    public (List<DhtContact> Contacts, List<DhtContact> Replacements) Drain()
    {
        var drained = (new List<DhtContact>(_contacts), new List<DhtContact>(_replacements));
        _contacts.Clear();
        _replacements.Clear();
        PendingPing = null;
        return drained;
    }

    private bool RemoveReplacement(NodeId id)
    {
        int at = _replacements.FindIndex(c => c.Id == id);
        if (at < 0) return false;
        _replacements.RemoveAt(at);
        return true;
    }
}
