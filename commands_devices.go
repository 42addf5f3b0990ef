package qmp

// Typed commands: devices, QOM objects, network backends and character
// devices. All methods are safe for concurrent use, as Run is.

import (
	"context"
	"encoding/json"
)

// DeviceAddArgs are device_add's arguments: the common members typed, the
// device's own properties (which QEMU's schema does not describe: they
// depend on the driver) in Props.
type DeviceAddArgs struct {
	Driver string `json:"driver"`
	ID     string `json:"id,omitempty"`
	Bus    string `json:"bus,omitempty"`
	// Props are the driver's properties, e.g. {"drive": "disk0"} for
	// virtio-blk-pci, sent as members beside driver and id.
	Props map[string]interface{} `json:"-"`
}

// MarshalJSON sends Props as members of the same object.
func (a DeviceAddArgs) MarshalJSON() ([]byte, error) {
	type plain DeviceAddArgs
	return mergeObjects(plain(a), a.Props)
}

// PCIInfo is one PCI bus in query-pci's reply.
type PCIInfo struct {
	Bus     int64           `json:"bus"`
	Devices []PCIDeviceInfo `json:"devices"`
}

// PCIDeviceInfo is one PCI device.
type PCIDeviceInfo struct {
	Bus       int64             `json:"bus"`
	Slot      int64             `json:"slot"`
	Function  int64             `json:"function"`
	ClassInfo PCIDeviceClass    `json:"class_info"`
	ID        PCIDeviceID       `json:"id"`
	IRQ       *int64            `json:"irq,omitempty"`
	IRQPin    int64             `json:"irq_pin"`
	QdevID    string            `json:"qdev_id"`
	PCIBridge *PCIBridgeInfo    `json:"pci_bridge,omitempty"`
	Regions   []PCIMemoryRegion `json:"regions"`
}

// PCIDeviceClass is a PCI device's class.
type PCIDeviceClass struct {
	Desc  *string `json:"desc,omitempty"`
	Class int64   `json:"class"`
}

// PCIDeviceID is a PCI device's ids.
type PCIDeviceID struct {
	Device          int64  `json:"device"`
	Vendor          int64  `json:"vendor"`
	Subsystem       *int64 `json:"subsystem,omitempty"`
	SubsystemVendor *int64 `json:"subsystem-vendor,omitempty"`
}

// PCIBridgeInfo is what a PCI bridge has behind it.
type PCIBridgeInfo struct {
	Bus     json.RawMessage `json:"bus"` // PciBusInfo: bus numbers and ranges
	Devices []PCIDeviceInfo `json:"devices,omitempty"`
}

// PCIMemoryRegion is one BAR of a PCI device.
type PCIMemoryRegion struct {
	Bar       int64  `json:"bar"`
	Type      string `json:"type"` // "io" or "memory"
	Address   int64  `json:"address"`
	Size      int64  `json:"size"`
	Prefetch  *bool  `json:"prefetch,omitempty"`
	MemType64 *bool  `json:"mem_type_64,omitempty"`
}

// ObjectPropertyInfo is one property in qom-list's reply.
type ObjectPropertyInfo struct {
	Name         string          `json:"name"`
	Type         string          `json:"type"` // "child<...>", "link<...>", "bool", "str", ...
	Description  *string         `json:"description,omitempty"`
	DefaultValue json.RawMessage `json:"default-value,omitempty"`
}

// ObjectAddArgs are object-add's arguments: QOMType and ID typed, the
// type's own properties (e.g. {"size": 1 << 30} for memory-backend-ram)
// in Props, a struct or map sent as members of the same object.
type ObjectAddArgs struct {
	QOMType string      `json:"qom-type"`
	ID      string      `json:"id"`
	Props   interface{} `json:"-"`
}

// MarshalJSON sends Props as members of the same object.
func (a ObjectAddArgs) MarshalJSON() ([]byte, error) {
	type plain ObjectAddArgs
	return mergeObjects(plain(a), a.Props)
}

// NetdevAddArgs are netdev_add's arguments: Type ("user", "tap",
// "socket", ...) and ID typed, the backend's own options in Props.
type NetdevAddArgs struct {
	Type  string      `json:"type"`
	ID    string      `json:"id"`
	Props interface{} `json:"-"`
}

// MarshalJSON sends Props as members of the same object.
func (a NetdevAddArgs) MarshalJSON() ([]byte, error) {
	type plain NetdevAddArgs
	return mergeObjects(plain(a), a.Props)
}

// ChardevBackend is chardev-add's backend: Type ("file", "socket",
// "pty", "null", ...) and its options as Data (a struct or map; QEMU
// 7.2 wants an object, {} when there are none).
type ChardevBackend struct {
	Type string      `json:"type"`
	Data interface{} `json:"data"`
}

// ChardevReturn is chardev-add's reply.
type ChardevReturn struct {
	Pty *string `json:"pty,omitempty"` // the pty's path, for Type "pty"
}

type (
	idArgs struct {
		ID string `json:"id"`
	}
	qomPathArgs struct {
		Path string `json:"path"`
	}
	qomGetArgs struct {
		Path     string `json:"path"`
		Property string `json:"property"`
	}
	qomSetArgs struct {
		Path     string      `json:"path"`
		Property string      `json:"property"`
		Value    interface{} `json:"value"`
	}
	setLinkArgs struct {
		Name string `json:"name"`
		Up   bool   `json:"up"`
	}
	chardevAddArgs struct {
		ID      string         `json:"id"`
		Backend ChardevBackend `json:"backend"`
	}
)

var (
	cmdDeviceAdd     = defCommand[DeviceAddArgs, struct{}]("device_add")
	cmdDeviceDel     = defCommand[idArgs, struct{}]("device_del")
	cmdQueryPci      = defCommand[struct{}, []PCIInfo]("query-pci")
	cmdQomGet        = defCommand[qomGetArgs, json.RawMessage]("qom-get")
	cmdQomSet        = defCommand[qomSetArgs, struct{}]("qom-set")
	cmdQomList       = defCommand[qomPathArgs, []ObjectPropertyInfo]("qom-list")
	cmdNetdevAdd     = defCommand[NetdevAddArgs, struct{}]("netdev_add")
	cmdNetdevDel     = defCommand[idArgs, struct{}]("netdev_del")
	cmdSetLink       = defCommand[setLinkArgs, struct{}]("set_link")
	cmdChardevAdd    = defCommand[chardevAddArgs, ChardevReturn]("chardev-add")
	cmdChardevRemove = defCommand[idArgs, struct{}]("chardev-remove")
	cmdObjectAdd     = defCommand[ObjectAddArgs, struct{}]("object-add")
	cmdObjectDel     = defCommand[idArgs, struct{}]("object-del")
)

// DeviceAdd hot-plugs a device (device_add).
func (m *Monitor) DeviceAdd(ctx context.Context, args DeviceAddArgs) error {
	return cmdDeviceAdd.do(ctx, m, &args)
}

// DeviceDel asks for a device to be unplugged (device_del). The device is
// gone when DEVICE_DELETED arrives: take EventCursor() first and wait
// with WaitDeviceDeleted.
func (m *Monitor) DeviceDel(ctx context.Context, id string) error {
	return cmdDeviceDel.do(ctx, m, &idArgs{ID: id})
}

// QueryPCI lists the PCI buses and their devices (query-pci).
func (m *Monitor) QueryPCI(ctx context.Context) ([]PCIInfo, error) {
	return cmdQueryPci.run(ctx, m, nil)
}

// QOMGet reads a QOM property and decodes it into res (qom-get); res may
// be nil. The property's type is in qom-list.
func (m *Monitor) QOMGet(ctx context.Context, path, property string, res interface{}) error {
	raw, err := cmdQomGet.run(ctx, m, &qomGetArgs{Path: path, Property: property})
	if err != nil || res == nil {
		return err
	}
	return json.Unmarshal(raw, res)
}

// QOMSet writes a QOM property (qom-set).
func (m *Monitor) QOMSet(ctx context.Context, path, property string, value interface{}) error {
	return cmdQomSet.do(ctx, m, &qomSetArgs{Path: path, Property: property, Value: value})
}

// QOMList lists the properties of a QOM object (qom-list).
func (m *Monitor) QOMList(ctx context.Context, path string) ([]ObjectPropertyInfo, error) {
	return cmdQomList.run(ctx, m, &qomPathArgs{Path: path})
}

// NetdevAdd adds a network backend (netdev_add).
func (m *Monitor) NetdevAdd(ctx context.Context, args NetdevAddArgs) error {
	return cmdNetdevAdd.do(ctx, m, &args)
}

// NetdevDel removes a network backend (netdev_del).
func (m *Monitor) NetdevDel(ctx context.Context, id string) error {
	return cmdNetdevDel.do(ctx, m, &idArgs{ID: id})
}

// SetLink sets the link of a NIC or netdev up or down (set_link).
func (m *Monitor) SetLink(ctx context.Context, name string, up bool) error {
	return cmdSetLink.do(ctx, m, &setLinkArgs{Name: name, Up: up})
}

// ChardevAdd adds a character device (chardev-add).
func (m *Monitor) ChardevAdd(ctx context.Context, id string, backend ChardevBackend) (*ChardevReturn, error) {
	if backend.Data == nil {
		backend.Data = struct{}{}
	}
	return cmdChardevAdd.ptr(ctx, m, &chardevAddArgs{ID: id, Backend: backend})
}

// ChardevRemove removes a character device (chardev-remove).
func (m *Monitor) ChardevRemove(ctx context.Context, id string) error {
	return cmdChardevRemove.do(ctx, m, &idArgs{ID: id})
}

// ObjectAdd creates a QOM object such as a memory backend or an iothread
// (object-add).
func (m *Monitor) ObjectAdd(ctx context.Context, args ObjectAddArgs) error {
	return cmdObjectAdd.do(ctx, m, &args)
}

// ObjectDel deletes a QOM object (object-del).
func (m *Monitor) ObjectDel(ctx context.Context, id string) error {
	return cmdObjectDel.do(ctx, m, &idArgs{ID: id})
}
